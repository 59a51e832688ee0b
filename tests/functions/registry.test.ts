import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { InstanceObservation } from "@berth/shared";
import { createSql } from "../../supabase/functions/_shared/db.ts";
import { ApiError } from "../../supabase/functions/_shared/errors.ts";
import { createRegistry, type Registry } from "../../supabase/functions/_shared/registry.ts";
import { createUser, useTestDatabase } from "../support/db.ts";

const getDb = useTestDatabase();

async function apiErrorOf(promise: Promise<unknown>): Promise<ApiError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(ApiError);
  return error as ApiError;
}

describe("registry", () => {
  let sql: ReturnType<typeof createSql>;
  let registry: Registry;
  let ownerId: string;
  let toolboxId: string;
  let counter = 0;

  beforeAll(async () => {
    sql = createSql(getDb().url);
    registry = createRegistry(sql);
    ownerId = await createUser(getDb().sql);
    toolboxId = (await registry.createToolbox({ ownerId, name: "registry", agentUrl: "http://127.0.0.1:30000" })).id;
  });

  afterAll(async () => {
    await sql?.end({ timeout: 5 });
  });

  async function createInstance() {
    counter += 1;
    return registry.createInstance({ ownerId, toolboxId, name: `tool-${counter}`, image: "nginx:1.27", containerPort: 80, secrets: { TOKEN: "value" } });
  }

  test("rows carry numbers for bigint columns", async () => {
    const row = await createInstance();

    expect(row.generation).toBe(1);
    expect(row.spec_generation).toBe(1);
    expect(row.version).toBe(1);
    expect(row.status).toBe("pending");
    expect(row.created_at).toBeInstanceOf(Date);
  });

  test("invalid value names the column", async () => {
    const error = await apiErrorOf(registry.createInstance({ ownerId, toolboxId, name: "bad-image", image: "Not An Image", containerPort: 80 }));

    expect(error.code).toBe("invalid_request");
    expect(error.details).toMatchObject({ fields: [{ field: "image" }] });
  });

  test("unknown toolbox maps to toolbox_not_found", async () => {
    const error = await apiErrorOf(registry.createInstance({ ownerId, toolboxId: randomUUID(), name: "orphan", image: "nginx:1.27", containerPort: 80 }));

    expect(error.code).toBe("toolbox_not_found");
  });

  test("second holder gets lease_held", async () => {
    const row = await createInstance();
    await registry.claimInstanceLease(row.id, "first", 30);

    const error = await apiErrorOf(registry.claimInstanceLease(row.id, "second", 30));

    expect(error.code).toBe("lease_held");
  });

  test("stale nonce gets lease_lost", async () => {
    const row = await createInstance();
    const first = await registry.claimInstanceLease(row.id, "holder", 30);
    await registry.claimInstanceLease(row.id, "holder", 30);

    const error = await apiErrorOf(
      registry.setInstanceStatus(first.lease_nonce!, { instanceId: row.id, status: "deploying", reasonCode: "DeployRequested", actor: "user" }),
    );

    expect(error.code).toBe("lease_lost");
    expect(await registry.releaseInstanceLease(row.id, first.lease_nonce!)).toBe(false);
  });

  test("forbidden transition gets invalid_transition", async () => {
    const row = await createInstance();
    const leased = await registry.claimInstanceLease(row.id, "holder", 30);

    const error = await apiErrorOf(
      registry.setInstanceStatus(leased.lease_nonce!, { instanceId: row.id, status: "stopping", reasonCode: "StopRequested", actor: "user" }),
    );

    expect(error.code).toBe("invalid_transition");
  });

  test("stale version gets version_conflict", async () => {
    const row = await createInstance();
    await registry.recordIntent(row.id, row.version, "stopped");

    const error = await apiErrorOf(registry.recordIntent(row.id, row.version, "running"));

    expect(error.code).toBe("version_conflict");
  });

  test("owned reads hide other owners", async () => {
    const row = await createInstance();
    const stranger = await createUser(getDb().sql);

    expect((await apiErrorOf(registry.getOwnedInstance(stranger, row.id))).code).toBe("instance_not_found");
    expect((await apiErrorOf(registry.getOwnedToolbox(stranger, toolboxId))).code).toBe("toolbox_not_found");
    expect(await registry.listOwnedInstances(stranger)).toEqual([]);
  });

  test("identical observation writes nothing", async () => {
    const row = await createInstance();
    const observation: InstanceObservation = {
      instance_id: row.id,
      container_id: "c1",
      state: "running",
      exit_code: null,
      oom_killed: false,
      restart_count: 0,
      generation: 1,
      host_port: row.host_port,
      started_at: null,
      finished_at: null,
      health: null,
    };

    const first = await registry.recordObservation(toolboxId, row.id, observation);
    const second = await registry.recordObservation(toolboxId, row.id, observation);

    expect(first?.container_id).toBe("c1");
    expect(first?.observed_generation).toBe(1);
    expect(second).toBeNull();
  });

  test("secret values come back only from the secret read", async () => {
    const row = await createInstance();

    expect(await registry.instanceSecretValues(row.id)).toEqual({ TOKEN: "value" });
    expect(JSON.stringify(row)).not.toContain('"value"');
  });
});
