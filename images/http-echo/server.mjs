// A dependency-free HTTP server for container tests.
//   GET /            JSON with the hostname, the pid and the names of all environment variables
//   GET /env/<NAME>  the value of one environment variable as text/plain, or 404 when unset
// With ECHO_EXIT_CODE set, it prints one line and exits at once with that code, which gives
// tests a container that crash-loops.
import http from "node:http";
import os from "node:os";

const DEFAULT_PORT = 8080;

exitEarlyIfRequested(process.env.ECHO_EXIT_CODE);

const port = parsePort(process.env.PORT);
const server = http.createServer(handleRequest);

server.listen(port, () => {
  console.log(JSON.stringify({ msg: "listening", port }));
});

// Node runs as PID 1 in the container, and the kernel does not apply the default action of
// SIGTERM to PID 1, so without this handler `docker stop` waits for its timeout and sends
// SIGKILL. 143 (128 + 15) is the code a Node process killed by SIGTERM reports outside PID 1.
process.on("SIGTERM", () => {
  console.log(JSON.stringify({ msg: "received SIGTERM, exiting" }));
  process.exit(143);
});

function exitEarlyIfRequested(value) {
  if (value === undefined || value === "") return;

  const code = Number(value);
  if (!Number.isInteger(code) || code < 0 || code > 255) {
    console.log(`invalid ECHO_EXIT_CODE ${JSON.stringify(value)}: expected an integer from 0 to 255; exiting with 2`);
    process.exit(2);
  }
  console.log(`ECHO_EXIT_CODE is set, exiting with code ${code}`);
  process.exit(code);
}

function parsePort(value) {
  if (value === undefined || value === "") return DEFAULT_PORT;

  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.log(`invalid PORT ${JSON.stringify(value)}: expected an integer from 1 to 65535; exiting with 2`);
    process.exit(2);
  }
  return port;
}

function handleRequest(request, response) {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  const status = route(request.method, path, response);
  console.log(JSON.stringify({ msg: "request", method: request.method, path, status }));
}

function route(method, path, response) {
  if (method !== "GET") {
    return send(response, 405, "application/json", { error: "method_not_allowed" });
  }

  if (path === "/") {
    return send(response, 200, "application/json", {
      service: "http-echo",
      hostname: os.hostname(),
      pid: process.pid,
      envNames: Object.keys(process.env).sort(),
    });
  }

  if (path.startsWith("/env/")) {
    const name = decodeName(path.slice("/env/".length));
    if (name === undefined) return send(response, 400, "application/json", { error: "invalid_request" });
    const value = process.env[name];
    if (value === undefined) return send(response, 404, "application/json", { error: "not_found", name });
    return send(response, 200, "text/plain; charset=utf-8", value);
  }

  return send(response, 404, "application/json", { error: "not_found", path });
}

function decodeName(encoded) {
  try {
    return decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
}

function send(response, status, contentType, body) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
  response.end(text);
  return status;
}
