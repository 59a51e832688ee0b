import { randomUUID } from "node:crypto";
import { beforeEach, describe, expect, it } from "vitest";
import { ErrorBody, InstanceObservation, InventoryResponse, LogsResponse, containerNameFor, instanceLabels } from "@berth/shared";
import { createApp } from "../../src/http/app.ts";
import { FakeEngine } from "../support/fake-engine.ts";
import { captureLogger } from "../support/capture-logger.ts";

const TOKEN = "unit-test-token-0123456789";
const IMAGE_V1 = "localhost/berth/app:1";
const IMAGE_V2 = "localhost/berth/app:2";
const TOOLBOX_ID = "7c1d3f4e-55aa-4b6c-9d2e-0f1a2b3c4d5e";
const SECRET_VALUE = "s3cr3t-value-that-must-not-be-logged";

let engine: FakeEngine;
let logs: ReturnType<typeof captureLogger>;
let app: ReturnType<typeof createApp>;

beforeEach(() => {
  engine = new FakeEngine();
  engine.images.add(IMAGE_V1);
  engine.images.add(IMAGE_V2);
  logs = captureLogger();
  app = buildApp(engine);
});

function buildApp(target: FakeEngine, toolboxId: string | null = TOOLBOX_ID) {
  return createApp({
    engine: target,
    config: { token: TOKEN, toolboxId, publishIp: "127.0.0.1", stopTimeoutSeconds: 1 },
    logger: logs.logger,
  });
}

function spec(overrides: Record<string, unknown> = {}) {
  return {
    generation: 1,
    image: IMAGE_V1,
    port: 8080,
    host_port: 41000,
    desired_state: "running",
    env: { API_KEY: SECRET_VALUE },
    ...overrides,
  };
}

async function call(method: string, path: string, body?: unknown, token: string | null = TOKEN) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (token !== null) {
    headers.authorization = `Bearer ${token}`;
  }
  const init: RequestInit = { method, headers };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await app.request(path, init);
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : (JSON.parse(text) as unknown) };
}

function errorCode(body: unknown): string {
  return ErrorBody.parse(body).error.code;
}

function errorFields(body: unknown): string[] {
  const details = ErrorBody.parse(body).error.details as { fields: Array<{ field: string }> };
  return details.fields.map((issue) => issue.field);
}

describe("ensure", () => {
  it("creates and starts a container", async () => {
    const id = randomUUID();
    const response = await call("PUT", `/v1/instances/${id}`, spec());

    expect(response.status).toBe(201);
    const observation = InstanceObservation.parse(response.body);
    expect(observation.state).toBe("running");
    expect(observation.generation).toBe(1);
    expect(observation.host_port).toBe(41000);
    expect(engine.containersOf(id).map((container) => container.name)).toEqual([containerNameFor(id)]);
  });

  it("keeps the container for the same generation", async () => {
    const id = randomUUID();
    const first = InstanceObservation.parse((await call("PUT", `/v1/instances/${id}`, spec())).body);
    const second = await call("PUT", `/v1/instances/${id}`, spec());

    expect(second.status).toBe(200);
    expect(InstanceObservation.parse(second.body).container_id).toBe(first.container_id);
    expect(engine.calls.filter((name) => name === "create")).toHaveLength(1);
  });

  it("replaces the container for a higher generation", async () => {
    const id = randomUUID();
    const first = InstanceObservation.parse((await call("PUT", `/v1/instances/${id}`, spec())).body);
    const second = await call("PUT", `/v1/instances/${id}`, spec({ generation: 2, image: IMAGE_V2 }));

    expect(second.status).toBe(201);
    const observation = InstanceObservation.parse(second.body);
    expect(observation.container_id).not.toBe(first.container_id);
    expect(observation.generation).toBe(2);
    expect(engine.containersOf(id)).toHaveLength(1);
  });

  it("keeps the old container when the new image is missing", async () => {
    const id = randomUUID();
    const first = InstanceObservation.parse((await call("PUT", `/v1/instances/${id}`, spec())).body);
    const second = await call("PUT", `/v1/instances/${id}`, spec({ generation: 2, image: "localhost/berth/missing:9" }));

    expect(second.status).toBe(404);
    expect(errorCode(second.body)).toBe("image_not_found");
    expect(engine.containers.get(first.container_id)?.details.running).toBe(true);
    expect(engine.calls).not.toContain("remove");
  });

  it("rejects a generation older than the container", async () => {
    const id = randomUUID();
    await call("PUT", `/v1/instances/${id}`, spec({ generation: 5 }));
    const response = await call("PUT", `/v1/instances/${id}`, spec({ generation: 4 }));

    expect(response.status).toBe(409);
    expect(errorCode(response.body)).toBe("conflict");
    expect(engine.containersOf(id)[0]?.labels["dev.berth.generation"]).toBe("5");
  });

  it("adopts a labelled container of the same generation", async () => {
    const id = randomUUID();
    const existing = engine.add({
      name: containerNameFor(id),
      image: IMAGE_V1,
      labels: instanceLabels({ instanceId: id, generation: 1, toolboxId: TOOLBOX_ID }),
      hostPort: 41000,
      running: true,
    });
    const response = await call("PUT", `/v1/instances/${id}`, spec());

    expect(response.status).toBe(200);
    expect(InstanceObservation.parse(response.body).container_id).toBe(existing);
    expect(engine.calls).not.toContain("create");
  });

  it("replaces an unlabelled container with the derived name", async () => {
    const id = randomUUID();
    const existing = engine.add({ name: containerNameFor(id), image: IMAGE_V1, labels: {}, hostPort: 41000, running: true });
    const response = await call("PUT", `/v1/instances/${id}`, spec());

    expect(response.status).toBe(201);
    expect(InstanceObservation.parse(response.body).container_id).not.toBe(existing);
    expect(engine.containersOf(id)).toHaveLength(1);
  });

  it("removes duplicate containers of one instance", async () => {
    const id = randomUUID();
    const labels = instanceLabels({ instanceId: id, generation: 1, toolboxId: TOOLBOX_ID });
    const named = engine.add({ name: containerNameFor(id), image: IMAGE_V1, labels, hostPort: 41000, running: true });
    engine.add({ name: "renamed-copy", image: IMAGE_V1, labels, hostPort: 41000 });
    const response = await call("PUT", `/v1/instances/${id}`, spec());

    expect(InstanceObservation.parse(response.body).container_id).toBe(named);
    expect(engine.containersOf(id).map((container) => container.id)).toEqual([named]);
  });

  it("adopts the winner of a create race", async () => {
    const id = randomUUID();
    let rival = "";
    engine.beforeCreate = (containerSpec) => {
      engine.beforeCreate = null;
      rival = engine.add({ name: containerNameFor(id), image: IMAGE_V1, labels: containerSpec.labels, hostPort: 41000 });
    };
    const response = await call("PUT", `/v1/instances/${id}`, spec());

    expect(response.status).toBe(200);
    const observation = InstanceObservation.parse(response.body);
    expect(observation.container_id).toBe(rival);
    expect(observation.state).toBe("running");
    expect(engine.containersOf(id)).toHaveLength(1);
  });

  it("serializes concurrent requests", async () => {
    const id = randomUUID();
    const responses = await Promise.all([1, 2, 3].map(() => call("PUT", `/v1/instances/${id}`, spec())));

    expect(responses.map((response) => response.status).sort()).toEqual([200, 200, 201]);
    expect(engine.calls.filter((name) => name === "create")).toHaveLength(1);
    expect(engine.containersOf(id)).toHaveLength(1);
  });

  it("rejects a name held by another toolbox", async () => {
    const id = randomUUID();
    const otherToolbox = randomUUID();
    engine.add({
      name: containerNameFor(id),
      image: IMAGE_V1,
      labels: instanceLabels({ instanceId: id, generation: 1, toolboxId: otherToolbox }),
      hostPort: 41000,
    });
    const response = await call("PUT", `/v1/instances/${id}`, spec());

    expect(response.status).toBe(409);
    expect(errorCode(response.body)).toBe("conflict");
    expect(engine.containersOf(id)).toHaveLength(1);
  });

  it("creates a stopped instance without starting it", async () => {
    const id = randomUUID();
    const created = await call("PUT", `/v1/instances/${id}`, spec({ desired_state: "stopped" }));
    const started = await call("PUT", `/v1/instances/${id}`, spec({ desired_state: "running" }));

    expect(InstanceObservation.parse(created.body).state).toBe("created");
    expect(InstanceObservation.parse(started.body).state).toBe("running");
  });

  it("reports a busy host port", async () => {
    engine.busyPorts.add(41000);
    const response = await call("PUT", `/v1/instances/${randomUUID()}`, spec());

    expect(response.status).toBe(409);
    expect(errorCode(response.body)).toBe("port_in_use");
    expect(ErrorBody.parse(response.body).error.details).toEqual({ port: 41000 });
  });

  it("rejects another toolbox id", async () => {
    const id = randomUUID();
    const response = await call("PUT", `/v1/instances/${id}`, spec({ toolbox_id: randomUUID() }));

    expect(response.status).toBe(400);
    expect(errorFields(response.body)).toEqual(["toolbox_id"]);
    expect(engine.containersOf(id)).toHaveLength(0);
  });

  it("passes spec fields to the engine", async () => {
    const id = randomUUID();
    await call("PUT", `/v1/instances/${id}`, spec({ command: ["serve", "--port", "8080"], memory_mb: 256, cpus: 0.5 }));
    const created = [...engine.containers.values()][0]?.spec;

    expect(created?.command).toEqual(["serve", "--port", "8080"]);
    expect(created?.memoryBytes).toBe(256 * 1024 * 1024);
    expect(created?.nanoCpus).toBe(500_000_000);
    expect(created?.publishIp).toBe("127.0.0.1");
    expect(created?.labels["dev.berth.toolbox-id"]).toBe(TOOLBOX_ID);
    expect(created?.env).toEqual({ API_KEY: SECRET_VALUE });
  });
});

describe("validation", () => {
  const cases: Array<[string, unknown, string]> = [
    ["missing image", spec({ image: undefined }), "image"],
    ["empty image", spec({ image: "" }), "image"],
    ["malformed image", spec({ image: "Not An Image" }), "image"],
    ["port 0", spec({ port: 0 }), "port"],
    ["port 70000", spec({ port: 70000 }), "port"],
    ["host port 0", spec({ host_port: 0 }), "host_port"],
    ["fractional port", spec({ port: 80.5 }), "port"],
    ["negative generation", spec({ generation: -1 }), "generation"],
    ["unknown desired state", spec({ desired_state: "paused" }), "desired_state"],
    ["env value number", spec({ env: { A: 1 } }), "env.A"],
    ["env name with space", spec({ env: { "A B": "x" } }), "env.A B"],
    ["command not strings", spec({ command: ["ok", 2] }), "command.1"],
    ["memory below minimum", spec({ memory_mb: 1 }), "memory_mb"],
    ["cpus zero", spec({ cpus: 0 }), "cpus"],
    ["toolbox id not a UUID", spec({ toolbox_id: "abc" }), "toolbox_id"],
    ["body is an array", [], "body"],
    ["body is not JSON", "{not json", "body"],
    ["body is empty", "", "body"],
  ];

  it.each(cases)("rejects %s", async (_name, body, field) => {
    const id = randomUUID();
    const response = await call("PUT", `/v1/instances/${id}`, body);

    expect(response.status).toBe(400);
    expect(errorCode(response.body)).toBe("invalid_request");
    expect(errorFields(response.body)).toContain(field);
    expect(engine.calls).not.toContain("create");
  });

  it("words field problems plainly", async () => {
    const response = await call("PUT", `/v1/instances/${randomUUID()}`, spec({ image: undefined, port: 80.5, env: { A: 1 } }));

    expect(response.status).toBe(400);
    expect(ErrorBody.parse(response.body).error.details).toEqual({
      fields: [
        { field: "image", message: "is required" },
        { field: "port", message: "must be a whole number" },
        { field: "env.A", message: "must be a string" },
      ],
    });
  });

  it("rejects a malformed instance id", async () => {
    const response = await call("PUT", "/v1/instances/not-a-uuid", spec());

    expect(response.status).toBe(400);
    expect(errorFields(response.body)).toEqual(["id"]);
    expect(engine.calls).toEqual([]);
  });

  it("rejects a body over the limit", async () => {
    const response = await call("PUT", `/v1/instances/${randomUUID()}`, spec({ env: { BIG: "x".repeat(70_000) } }));

    expect(response.status).toBe(413);
    expect(errorCode(response.body)).toBe("payload_too_large");
    expect(engine.calls).toEqual([]);
  });

  it.each([["0"], ["abc"], ["10001"], ["-5"], ["1.5"]])("rejects logs tail %s", async (tail) => {
    const response = await call("GET", `/v1/instances/${randomUUID()}/logs?tail=${tail}`);

    expect(response.status).toBe(400);
    expect(errorFields(response.body)).toEqual(["tail"]);
  });

  it("accepts null optional fields", async () => {
    const response = await call("PUT", `/v1/instances/${randomUUID()}`, spec({ command: null, env: null, memory_mb: null, cpus: null }));

    expect(response.status).toBe(201);
  });
});

describe("actions", () => {
  it("stops, starts and restarts", async () => {
    const id = randomUUID();
    await call("PUT", `/v1/instances/${id}`, spec());

    const stopped = await call("POST", `/v1/instances/${id}/stop`);
    expect(InstanceObservation.parse(stopped.body).state).toBe("exited");
    const started = await call("POST", `/v1/instances/${id}/start`);
    expect(InstanceObservation.parse(started.body).state).toBe("running");
    const restarted = await call("POST", `/v1/instances/${id}/restart`);
    expect(restarted.status).toBe(200);
    expect(engine.calls).toContain("restart:1");
  });

  it.each([["start"], ["stop"], ["restart"]])("%s of unknown instance is 404", async (action) => {
    const response = await call("POST", `/v1/instances/${randomUUID()}/${action}`);

    expect(response.status).toBe(404);
    expect(errorCode(response.body)).toBe("instance_not_found");
  });

  it("logs of unknown instance is 404", async () => {
    const response = await call("GET", `/v1/instances/${randomUUID()}/logs`);

    expect(response.status).toBe(404);
    expect(errorCode(response.body)).toBe("instance_not_found");
  });

  it("returns logs", async () => {
    const id = randomUUID();
    await call("PUT", `/v1/instances/${id}`, spec());
    const response = await call("GET", `/v1/instances/${id}/logs?tail=5`);

    expect(LogsResponse.parse(response.body).lines).toEqual([{ stream: "stdout", time: null, text: "fake log line" }]);
  });

  it("deletes an instance and an absent one", async () => {
    const id = randomUUID();
    await call("PUT", `/v1/instances/${id}`, spec());

    expect((await call("DELETE", `/v1/instances/${id}`)).status).toBe(204);
    expect(engine.containersOf(id)).toHaveLength(0);
    expect((await call("DELETE", `/v1/instances/${id}`)).status).toBe(204);
  });

  it("finds a renamed labelled container", async () => {
    const id = randomUUID();
    const renamed = engine.add({
      name: "renamed-by-operator",
      image: IMAGE_V1,
      labels: instanceLabels({ instanceId: id, generation: 1, toolboxId: TOOLBOX_ID }),
      hostPort: 41000,
    });
    const response = await call("POST", `/v1/instances/${id}/start`);

    expect(InstanceObservation.parse(response.body).container_id).toBe(renamed);
  });
});

describe("inventory", () => {
  it("lists only this toolbox", async () => {
    const own = randomUUID();
    await call("PUT", `/v1/instances/${own}`, spec());
    const otherId = randomUUID();
    engine.add({
      name: containerNameFor(otherId),
      image: IMAGE_V1,
      labels: instanceLabels({ instanceId: otherId, generation: 1, toolboxId: randomUUID() }),
      hostPort: 41001,
    });
    const response = await call("GET", "/v1/inventory");
    const inventory = InventoryResponse.parse(response.body);

    expect(inventory.engine_version).toBe("fake-1.0");
    expect(inventory.instances.map((instance) => instance.instance_id)).toEqual([own]);
  });

  it("lists every managed container without a toolbox", async () => {
    app = buildApp(engine, null);
    const first = randomUUID();
    const second = randomUUID();
    await call("PUT", `/v1/instances/${first}`, spec());
    await call("PUT", `/v1/instances/${second}`, spec({ toolbox_id: randomUUID(), host_port: 41001 }));
    const inventory = InventoryResponse.parse((await call("GET", "/v1/inventory")).body);

    expect(inventory.instances.map((instance) => instance.instance_id).sort()).toEqual([first, second].sort());
  });
});

describe("errors", () => {
  it("engine unavailable is 503", async () => {
    engine.available = false;
    for (const [method, path, body] of [
      ["GET", "/v1/inventory", undefined],
      ["PUT", `/v1/instances/${randomUUID()}`, spec()],
      ["POST", `/v1/instances/${randomUUID()}/start`, undefined],
    ] as const) {
      const response = await call(method, path, body);
      expect(response.status, `${method} ${path}`).toBe(503);
      expect(errorCode(response.body), `${method} ${path}`).toBe("engine_unavailable");
    }
  });

  it("unknown route is 404", async () => {
    const response = await call("GET", "/v1/nothing");

    expect(response.status).toBe(404);
    expect(errorCode(response.body)).toBe("not_found");
  });

  it("wrong method is 405", async () => {
    const response = await call("GET", `/v1/instances/${randomUUID()}`);

    expect(response.status).toBe(405);
    expect(errorCode(response.body)).toBe("method_not_allowed");
  });
});

describe("auth", () => {
  const id = "0b6f1a57-3c0e-4d55-9b1c-2f1a3e4d5c6b";
  const routes: Array<[string, string]> = [
    ["GET", "/v1/inventory"],
    ["PUT", `/v1/instances/${id}`],
    ["POST", `/v1/instances/${id}/start`],
    ["POST", `/v1/instances/${id}/stop`],
    ["POST", `/v1/instances/${id}/restart`],
    ["DELETE", `/v1/instances/${id}`],
    ["GET", `/v1/instances/${id}/logs`],
    ["GET", "/v1/unknown"],
  ];

  it.each(routes)("%s %s without token is 401", async (method, path) => {
    const response = await call(method, path, method === "PUT" ? spec() : undefined, null);

    expect(response.status).toBe(401);
    expect(errorCode(response.body)).toBe("unauthorized");
  });

  it.each(routes)("%s %s with wrong token is 403", async (method, path) => {
    const response = await call(method, path, method === "PUT" ? spec() : undefined, `${TOKEN}x`);

    expect(response.status).toBe(403);
    expect(errorCode(response.body)).toBe("forbidden");
  });

  it("non-bearer scheme is 401", async () => {
    const response = await app.request("/v1/inventory", { headers: { authorization: `Basic ${btoa(`x:${TOKEN}`)}` } });

    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toContain("Bearer");
  });

  it("healthz needs no token", async () => {
    const response = await call("GET", "/healthz", undefined, null);

    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ status: "ok" });
    expect(engine.calls).toEqual([]);
  });

  it("no container change without a token", async () => {
    await call("PUT", `/v1/instances/${id}`, spec(), null);

    expect(engine.calls).toEqual([]);
  });
});

describe("logging", () => {
  it("binds ids and hides secrets", async () => {
    const id = randomUUID();
    await app.request(`/v1/instances/${id}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "x-request-id": "req-42" },
      body: JSON.stringify(spec()),
    });
    await call("GET", "/v1/inventory", undefined, `${TOKEN}-wrong`);
    const lines = logs.lines();
    const text = lines.join("\n");

    expect(text).not.toContain(SECRET_VALUE);
    expect(text).not.toContain(TOKEN);
    const completed = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.msg === "request completed");
    expect(completed).toMatchObject({ request_id: "req-42", instance_id: id, status: 201 });
    const rejected = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.status === 403);
    expect(rejected).toMatchObject({ msg: "request completed", error_code: "forbidden" });
  });
});
