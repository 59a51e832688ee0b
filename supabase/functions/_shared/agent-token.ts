/**
 * Agent tokens are derived, not stored: HMAC-SHA256 over the toolbox id and its token version
 * with the control-plane secret. Rotation bumps the version, which invalidates the old token.
 */
const encoder = new TextEncoder();

async function hmacKey(secret: string): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

function base64url(bytes: ArrayBuffer): string {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function tokenMessage(toolboxId: string, tokenVersion: number): Uint8Array<ArrayBuffer> {
  return encoder.encode(`berth-agent-token:v1:${toolboxId.toLowerCase()}:${tokenVersion}`);
}

/** Derives the agent token of a toolbox at a token version. */
export async function deriveAgentToken(secret: string, toolboxId: string, tokenVersion: number): Promise<string> {
  const signature = await crypto.subtle.sign("HMAC", await hmacKey(secret), tokenMessage(toolboxId, tokenVersion));
  return base64url(signature);
}

/** Checks a presented token against the derived one; `crypto.subtle.verify` compares in constant time. */
export async function verifyAgentToken(secret: string, toolboxId: string, tokenVersion: number, presented: string): Promise<boolean> {
  const bytes = decodeBase64url(presented);
  if (bytes === null) return false;
  return crypto.subtle.verify("HMAC", await hmacKey(secret), bytes, tokenMessage(toolboxId, tokenVersion));
}

function decodeBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]{1,128}$/.test(text)) return null;
  const padded = text.replaceAll("-", "+").replaceAll("_", "/") + "=".repeat((4 - (text.length % 4)) % 4);
  try {
    return Uint8Array.from(atob(padded), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}
