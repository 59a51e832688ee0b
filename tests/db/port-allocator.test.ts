import postgres from "postgres";
import { beforeAll, describe, expect, test } from "vitest";
import { SQLSTATE } from "../../packages/shared/src/index.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { createInstance, createToolbox, readInstance, sqlError, type InstanceRow } from "./fixtures.ts";

const getDb = useTestDatabase();

let ownerId: string;

beforeAll(async () => {
  const { sql } = getDb();
  ownerId = await createUser(sql);
});

describe("host port allocator", () => {
  test("twenty concurrent deploys get distinct ports", async () => {
    const { sql, url } = getDb();
    // The agent port sits inside the range on purpose: the allocator must skip it.
    const toolbox = await createToolbox(sql, ownerId, { agentPort: 30005, portRangeStart: 30000, portRangeEnd: 30030 });
    const clients = Array.from({ length: 20 }, () => postgres(url, { max: 1, onnotice: () => {} }));

    try {
      await Promise.all(clients.map((client) => client`select 1`));
      // Every deploy keeps its transaction open a little, so later ones collide on the unique
      // index with uncommitted rows and must retry with the next port.
      const ports = await Promise.all(
        clients.map((client, index) =>
          client.begin(async (tx) => {
            const [row] = await tx<InstanceRow[]>`
              select * from berth_private.create_instance(${ownerId}, ${toolbox.id}, ${`parallel-${index}`}, 'nginx:1.27', 8080)`;
            await tx`select pg_sleep(0.05)`;
            return row!.host_port;
          }),
        ),
      );

      expect(new Set(ports).size).toBe(20);
      for (const port of ports) {
        expect(port).toBeGreaterThanOrEqual(30000);
        expect(port).toBeLessThanOrEqual(30030);
        expect(port).not.toBe(30005);
      }
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  });

  test("exhausted range raises ports_exhausted", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId, { agentPort: 40001, portRangeStart: 40000, portRangeEnd: 40002 });
    const first = await createInstance(sql, ownerId, toolbox.id);
    const second = await createInstance(sql, ownerId, toolbox.id);

    const error = await sqlError(createInstance(sql, ownerId, toolbox.id));

    expect([first.host_port, second.host_port].sort()).toEqual([40000, 40002]);
    expect(error.code).toBe(SQLSTATE.portsExhausted);
    expect(error.message).toContain(toolbox.id);
    expect(error.message).toContain("40000-40002");
    expect(error.column_name).toBe("host_port");
  });

  test("removed instance frees its port", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId, { agentPort: 41000, portRangeStart: 41000, portRangeEnd: 41001 });
    const first = await createInstance(sql, ownerId, toolbox.id);
    await sql`update public.tool_instances set status = 'removed', status_reason_code = 'ContainerRemoved' where id = ${first.id}`;

    const second = await createInstance(sql, ownerId, toolbox.id);

    expect(second.host_port).toBe(first.host_port);
  });

  test("reallocation moves to another free port", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId, { portRangeStart: 42000, portRangeEnd: 42010 });
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [leased] = await sql<InstanceRow[]>`select * from berth_private.claim_instance_lease(${instance.id}, 'deployer', 30)`;

    const [moved] = await sql<InstanceRow[]>`
      select * from berth_private.reallocate_host_port(${instance.id}, ${leased!.lease_nonce})`;

    expect(moved!.host_port).not.toBe(instance.host_port);
    expect(moved!.host_port).toBeGreaterThanOrEqual(42000);
    expect(moved!.spec_generation).toBe(moved!.generation);
    expect(Number(moved!.spec_generation)).toBe(Number(instance.spec_generation) + 1);
  });

  test("reallocation without a free port raises", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId, { agentPort: 43000, portRangeStart: 43000, portRangeEnd: 43001 });
    const instance = await createInstance(sql, ownerId, toolbox.id);
    const [leased] = await sql<InstanceRow[]>`select * from berth_private.claim_instance_lease(${instance.id}, 'deployer', 30)`;

    const error = await sqlError(sql`select berth_private.reallocate_host_port(${instance.id}, ${leased!.lease_nonce})`);

    expect(error.code).toBe(SQLSTATE.portsExhausted);
    expect((await readInstance(sql, instance.id)).host_port).toBe(43001);
  });

  test("draining toolbox accepts no deploys", async () => {
    const { sql } = getDb();
    const toolbox = await createToolbox(sql, ownerId);
    await sql`select berth_private.set_toolbox_status(${toolbox.id}, 'draining')`;

    const error = await sqlError(createInstance(sql, ownerId, toolbox.id));

    expect(error.code).toBe(SQLSTATE.toolboxUnavailable);
  });

  test("another owner's toolbox is not found", async () => {
    const { sql } = getDb();
    const stranger = await createUser(sql);
    const toolbox = await createToolbox(sql, stranger);

    const error = await sqlError(createInstance(sql, ownerId, toolbox.id));

    expect(error.code).toBe(SQLSTATE.toolboxNotFound);
  });
});
