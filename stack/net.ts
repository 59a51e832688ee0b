import net from "node:net";

/** Returns a TCP port that is free on 127.0.0.1 at the time of the call. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") {
    throw new Error("could not read the port of a probe socket on 127.0.0.1");
  }
  return address.port;
}
