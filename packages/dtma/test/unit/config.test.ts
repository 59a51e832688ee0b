import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseDockerHost } from "../../src/config.ts";

const TOKEN = "config-test-token-0123456789";

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      return error.problems;
    }
    throw error;
  }
  throw new Error("loadConfig accepted the environment");
}

describe("loadConfig", () => {
  it("applies defaults", () => {
    const config = loadConfig({ DTMA_TOKEN: TOKEN });

    expect(config.port).toBe(30000);
    expect(config.host).toBe("127.0.0.1");
    expect(config.publishIp).toBe("127.0.0.1");
    expect(config.docker).toEqual({ kind: "socket", socketPath: "/var/run/docker.sock" });
    expect(config.controlPlaneUrl).toBeNull();
    expect(config.toolboxId).toBeNull();
  });

  it("reads every setting", () => {
    const config = loadConfig({
      DTMA_TOKEN: TOKEN,
      DTMA_PORT: "0",
      DTMA_HOST: "0.0.0.0",
      DOCKER_HOST: "tcp://127.0.0.1:2375",
      DTMA_PUBLISH_IP: "::1",
      DTMA_CONTROL_PLANE_URL: "http://127.0.0.1:54321/functions/v1/",
      DTMA_TOOLBOX_ID: "7C1D3F4E-55AA-4B6C-9D2E-0F1A2B3C4D5E",
      DTMA_HEARTBEAT_INTERVAL_MS: "5000",
      DTMA_STOP_TIMEOUT_SECONDS: "3",
    });

    expect(config.port).toBe(0);
    expect(config.host).toBe("0.0.0.0");
    expect(config.docker).toEqual({ kind: "tcp", protocol: "http", host: "127.0.0.1", port: 2375 });
    expect(config.publishIp).toBe("::1");
    expect(config.controlPlaneUrl).toBe("http://127.0.0.1:54321/functions/v1");
    expect(config.toolboxId).toBe("7c1d3f4e-55aa-4b6c-9d2e-0f1a2b3c4d5e");
    expect(config.heartbeatIntervalMs).toBe(5000);
    expect(config.stopTimeoutSeconds).toBe(3);
  });

  const invalid: Array<[string, Record<string, string | undefined>, string]> = [
    ["missing token", {}, "DTMA_TOKEN"],
    ["empty token", { DTMA_TOKEN: "" }, "DTMA_TOKEN"],
    ["short token", { DTMA_TOKEN: "abc" }, "DTMA_TOKEN"],
    ["port not a number", { DTMA_TOKEN: TOKEN, DTMA_PORT: "http" }, "DTMA_PORT"],
    ["port too large", { DTMA_TOKEN: TOKEN, DTMA_PORT: "70000" }, "DTMA_PORT"],
    ["publish ip not an address", { DTMA_TOKEN: TOKEN, DTMA_PUBLISH_IP: "localhost" }, "DTMA_PUBLISH_IP"],
    ["docker host scheme", { DTMA_TOKEN: TOKEN, DOCKER_HOST: "ssh://host" }, "DOCKER_HOST"],
    ["relative socket", { DTMA_TOKEN: TOKEN, DOCKER_HOST: "unix://run/docker.sock" }, "DOCKER_HOST"],
    ["control plane url", { DTMA_TOKEN: TOKEN, DTMA_CONTROL_PLANE_URL: "ftp://x", DTMA_TOOLBOX_ID: "7c1d3f4e-55aa-4b6c-9d2e-0f1a2b3c4d5e" }, "DTMA_CONTROL_PLANE_URL"],
    ["control plane without toolbox", { DTMA_TOKEN: TOKEN, DTMA_CONTROL_PLANE_URL: "http://127.0.0.1:1" }, "DTMA_TOOLBOX_ID"],
    ["toolbox id not a UUID", { DTMA_TOKEN: TOKEN, DTMA_TOOLBOX_ID: "toolbox-1" }, "DTMA_TOOLBOX_ID"],
    ["backoff min above max", { DTMA_TOKEN: TOKEN, DTMA_HEARTBEAT_BACKOFF_MIN_MS: "5000", DTMA_HEARTBEAT_BACKOFF_MAX_MS: "100" }, "DTMA_HEARTBEAT_BACKOFF_MAX_MS"],
  ];

  it.each(invalid)("names the variable for %s", (_name, env, variable) => {
    const problems = problemsOf(env);

    expect(problems.some((problem) => problem.startsWith(`${variable}:`))).toBe(true);
  });

  it("treats empty optional settings as unset", () => {
    const config = loadConfig({ DTMA_TOKEN: TOKEN, DTMA_PORT: "", DTMA_CONTROL_PLANE_URL: "" });

    expect(config.port).toBe(30000);
    expect(config.controlPlaneUrl).toBeNull();
  });
});

describe("parseDockerHost", () => {
  it.each([
    ["unix:///run/podman/podman.sock", { kind: "socket", socketPath: "/run/podman/podman.sock" }],
    ["tcp://10.0.0.5", { kind: "tcp", protocol: "http", host: "10.0.0.5", port: 2375 }],
    ["https://engine.internal:2376", { kind: "tcp", protocol: "https", host: "engine.internal", port: 2376 }],
    ["tcp://[::1]:2375", { kind: "tcp", protocol: "http", host: "::1", port: 2375 }],
  ])("parses %s", (value, expected) => {
    const problems: string[] = [];

    expect(parseDockerHost(value, problems)).toEqual(expected);
    expect(problems).toEqual([]);
  });
});
