// Runs an edge function module the way the Supabase edge runtime does: the module calls
// `Deno.serve(handler)` without a port, and the runtime decides where it listens. Here that is
// 127.0.0.1:$PORT, so several functions can run side by side. Usage: serve-shim.ts <entry>.
type ServeArguments = Parameters<typeof Deno.serve>;

const port = Number(Deno.env.get("PORT"));
const entry = Deno.args[0];
if (!Number.isInteger(port) || port <= 0 || entry === undefined) {
  console.error("usage: PORT=<port> deno run serve-shim.ts <function entry module>");
  Deno.exit(2);
}

const serve = Deno.serve.bind(Deno) as (...args: unknown[]) => Deno.HttpServer;
const listen = { port, hostname: "127.0.0.1" };

function serveOnLocalPort(...args: ServeArguments): Deno.HttpServer {
  const [first, second] = args as unknown[];
  if (typeof first === "function") return serve(listen, first);
  if (typeof second === "function") return serve({ ...(first as object), ...listen }, second);
  return serve({ ...(first as object), ...listen });
}

Object.defineProperty(Deno, "serve", { value: serveOnLocalPort });
await import(new URL(entry, `file://${Deno.cwd()}/`).href);
