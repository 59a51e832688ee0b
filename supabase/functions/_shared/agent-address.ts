import { lookup } from "node:dns/promises";

/**
 * Address checks for agent URLs. Unless BERTH_ALLOW_PRIVATE_AGENT_URLS is set, the functions
 * register and call agents only at public addresses, so a user cannot point them at the
 * loopback interface, the cloud metadata service or other hosts of the private network.
 */

/** Class of a non-public address; `reserved` covers ranges that are not routed on the internet. */
export type AddressRange = "unspecified" | "loopback" | "private" | "link-local" | "multicast" | "reserved";

/** Resolves a host name to the IP addresses a connection to it may use. */
export type HostResolver = (hostname: string) => Promise<string[]>;

/**
 * Resolves with the system resolver (getaddrinfo), which reads /etc/hosts as fetch does.
 * `node:dns/promises` exists in Node and in Deno, so tests and functions share this code.
 */
export const resolveWithSystem: HostResolver = async (hostname) => {
  const entries = await lookup(hostname, { all: true, verbatim: true });
  return entries.map((entry) => entry.address);
};

interface Block {
  network: bigint;
  prefixLength: number;
  range: AddressRange;
}

function block(address: string, prefixLength: number, range: AddressRange): Block {
  const network = parseIpv4(address) ?? parseIpv6(address);
  if (network === null) throw new Error(`invalid network address ${address}`);
  return { network, prefixLength, range };
}

// Special-purpose ranges that may reach hosts on the control plane's own network.
// The documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32)
// stay allowed: they route nowhere, and tests use them as stand-ins for public hosts.
const IPV4_BLOCKS: readonly Block[] = [
  block("0.0.0.0", 8, "unspecified"),
  block("10.0.0.0", 8, "private"),
  block("100.64.0.0", 10, "private"),
  block("127.0.0.0", 8, "loopback"),
  block("169.254.0.0", 16, "link-local"),
  block("172.16.0.0", 12, "private"),
  block("192.0.0.0", 24, "reserved"),
  block("192.168.0.0", 16, "private"),
  block("198.18.0.0", 15, "reserved"),
  block("224.0.0.0", 4, "multicast"),
  block("240.0.0.0", 4, "reserved"),
];

const IPV6_BLOCKS: readonly Block[] = [
  block("::", 128, "unspecified"),
  block("::1", 128, "loopback"),
  block("::", 96, "reserved"),
  block("fc00::", 7, "private"),
  block("fe80::", 10, "link-local"),
  block("fec0::", 10, "private"),
  block("ff00::", 8, "multicast"),
];

// IPv6 ranges that carry an IPv4 address in their low 32 bits: IPv4-mapped (::ffff:0:0/96)
// and the NAT64 well-known prefix (64:ff9b::/96). They reach the IPv4 host they embed.
const IPV4_EMBEDDING_BLOCKS: readonly Block[] = [block("::ffff:0:0", 96, "reserved"), block("64:ff9b::", 96, "reserved")];

/**
 * Returns the range of a non-public IP address, or null when it is public or not an IP
 * address at all. Accepts IPv4 in dotted decimal and IPv6 with or without brackets and zone.
 */
export function nonPublicRange(address: string): AddressRange | null {
  const ipv4 = parseIpv4(address);
  if (ipv4 !== null) return rangeOf(ipv4, 32, IPV4_BLOCKS);

  const ipv6 = parseIpv6(address.replace(/^\[(.*)\]$/, "$1").replace(/%.*$/, ""));
  if (ipv6 === null) return null;
  if (IPV4_EMBEDDING_BLOCKS.some((embedding) => contains(embedding, ipv6, 128))) {
    return rangeOf(ipv6 & 0xffffffffn, 32, IPV4_BLOCKS);
  }
  return rangeOf(ipv6, 128, IPV6_BLOCKS);
}

/** Returns whether a URL host name is an IPv4 or IPv6 literal rather than a name to resolve. */
export function isIpLiteral(hostname: string): boolean {
  return parseIpv4(hostname) !== null || hostname.startsWith("[");
}

/**
 * Returns the range a URL host name is in without resolving it: the range of an IP literal,
 * `loopback` for `localhost` and its subdomains, or null for any other name.
 */
export function nonPublicHostRange(hostname: string): AddressRange | null {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (name === "localhost" || name.endsWith(".localhost")) return "loopback";
  return nonPublicRange(name);
}

function rangeOf(address: bigint, width: number, blocks: readonly Block[]): AddressRange | null {
  // The most specific block wins, so ::1 is loopback although ::/96 is reserved.
  const matches = blocks.filter((candidate) => contains(candidate, address, width));
  matches.sort((a, b) => b.prefixLength - a.prefixLength);
  return matches[0]?.range ?? null;
}

function contains(candidate: Block, address: bigint, width: number): boolean {
  const shift = BigInt(width - candidate.prefixLength);
  return address >> shift === candidate.network >> shift;
}

function parseIpv4(text: string): bigint | null {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (match === null) return null;

  const octets = match.slice(1).map(Number);
  if (octets.some((octet) => octet > 255)) return null;
  return octets.reduce((value, octet) => (value << 8n) | BigInt(octet), 0n);
}

/** Parses IPv6 text, including `::` and a dotted IPv4 tail, into a 128-bit number. */
function parseIpv6(text: string): bigint | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || text.split("::").length > 2) return null;

  const [head = "", tail] = text.split("::");
  const headGroups = groupsOf(head);
  const tailGroups = tail === undefined ? [] : groupsOf(tail);
  if (headGroups === null || tailGroups === null) return null;

  const missing = 8 - headGroups.length - tailGroups.length;
  if (tail === undefined ? missing !== 0 : missing < 1) return null;
  const groups = [...headGroups, ...new Array<number>(tail === undefined ? 0 : missing).fill(0), ...tailGroups];
  return groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n);
}

/** Splits one side of `::` into 16-bit groups; a dotted IPv4 tail counts as two groups. */
function groupsOf(part: string): number[] | null {
  if (part === "") return [];

  const groups: number[] = [];
  const pieces = part.split(":");
  for (const [index, piece] of pieces.entries()) {
    const ipv4 = index === pieces.length - 1 ? parseIpv4(piece) : null;
    if (ipv4 !== null) {
      groups.push(Number(ipv4 >> 16n), Number(ipv4 & 0xffffn));
    } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
      groups.push(parseInt(piece, 16));
    } else {
      return null;
    }
  }
  return groups;
}
