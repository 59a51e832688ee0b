// Preloaded with `node --import` so `docker stop` ends the server at once. Node runs as PID 1
// in the container, and the kernel does not apply the default action of SIGTERM to PID 1, so
// without a handler the engine waits for its stop timeout and then sends SIGKILL.
// The exit code 143 (128 + 15) is what a Node process killed by SIGTERM reports outside PID 1.
process.on("SIGTERM", () => {
  console.log("received SIGTERM, exiting");
  process.exit(143);
});
