import { beforeAll, describe, expect, test } from "vitest";
import { SQLSTATE } from "../../packages/shared/src/index.ts";
import { createUser, useTestDatabase } from "../support/db.ts";
import { createInstance, createToolbox, sqlError, type InstanceOptions, type ToolboxRow } from "./fixtures.ts";

const getDb = useTestDatabase();

let ownerId: string;
let toolbox: ToolboxRow;

beforeAll(async () => {
  const { sql } = getDb();
  ownerId = await createUser(sql);
  toolbox = await createToolbox(sql, ownerId);
});

interface InvalidCase {
  case: string;
  options: InstanceOptions;
  column: string;
  constraint: string;
}

const INVALID_INSTANCES: InvalidCase[] = [
  { case: "name with a space", options: { name: "my tool" }, column: "name", constraint: "tool_instances_name_dns_label" },
  { case: "uppercase name", options: { name: "MyTool" }, column: "name", constraint: "tool_instances_name_dns_label" },
  { case: "name ending in a hyphen", options: { name: "tool-" }, column: "name", constraint: "tool_instances_name_dns_label" },
  { case: "name of 64 characters", options: { name: "a".repeat(64) }, column: "name", constraint: "tool_instances_name_dns_label" },
  { case: "port 0", options: { containerPort: 0 }, column: "container_port", constraint: "tool_instances_container_port_range" },
  { case: "port 70000", options: { containerPort: 70000 }, column: "container_port", constraint: "tool_instances_container_port_range" },
  { case: "empty image", options: { image: "" }, column: "image", constraint: "tool_instances_image_reference" },
  { case: "image with a space", options: { image: "nginx latest" }, column: "image", constraint: "tool_instances_image_reference" },
  { case: "image with uppercase path", options: { image: "Library/Nginx" }, column: "image", constraint: "tool_instances_image_reference" },
  { case: "image with empty tag", options: { image: "nginx:" }, column: "image", constraint: "tool_instances_image_reference" },
  { case: "image with short digest", options: { image: "nginx@sha256:abc" }, column: "image", constraint: "tool_instances_image_reference" },
  { case: "env name with a dash", options: { env: { "BAD-NAME": "x" } }, column: "env", constraint: "tool_instances_env_string_map" },
  { case: "secret name with a space", options: { secrets: { "API KEY": "x" } }, column: "secret_names", constraint: "tool_instances_secret_names_valid" },
  { case: "secret shadowing env", options: { env: { TOKEN: "a" }, secrets: { TOKEN: "b" } }, column: "env", constraint: "tool_instances_secret_names_not_in_env" },
];

const VALID_IMAGES = [
  "nginx",
  "nginx:1.27-alpine",
  "library/nginx",
  "ghcr.io/modelcontextprotocol/server-everything:latest",
  "localhost:5000/team/tool_x:v1.2.3",
  `registry.example.com/a/b/c@sha256:${"a".repeat(64)}`,
  `docker.io/library/redis:7@sha256:${"0".repeat(64)}`,
];

describe("instance validation", () => {
  for (const invalid of INVALID_INSTANCES) {
    test(`rejects ${invalid.case}`, async () => {
      const { sql } = getDb();
      const error = await sqlError(createInstance(sql, ownerId, toolbox.id, invalid.options));

      expect(error.code).toBe(SQLSTATE.invalidParameterValue);
      expect(error.column_name).toBe(invalid.column);
      expect(error.constraint_name).toBe(invalid.constraint);
      expect(error.detail).toContain(`column=${invalid.column}`);
      expect(error.hint, "the hint states the rule").toBeTruthy();
    });
  }

  test("rejects a missing image", async () => {
    const { sql } = getDb();
    const error = await sqlError(sql`
      select berth_private.create_instance(${ownerId}, ${toolbox.id}, 'no-image', null, 8080)`);

    expect(error.code).toBe(SQLSTATE.invalidParameterValue);
    expect(error.column_name).toBe("image");
  });

  test("rejects desired state removed", async () => {
    const { sql } = getDb();
    const error = await sqlError(sql`
      select berth_private.create_instance(${ownerId}, ${toolbox.id}, 'removed-at-birth', 'nginx', 8080, p_desired_state => 'removed')`);

    expect(error.code).toBe(SQLSTATE.invalidParameterValue);
    expect(error.column_name).toBe("desired_state");
  });

  test("rejects non-string secret values", async () => {
    const { sql } = getDb();
    const error = await sqlError(sql`
      select berth_private.create_instance(${ownerId}, ${toolbox.id}, 'numeric-secret', 'nginx', 8080, p_secrets => ${sql.json({ PIN: 1234 })})`);

    expect(error.code).toBe(SQLSTATE.invalidParameterValue);
    expect(error.column_name).toBe("secret_names");
  });

  for (const image of VALID_IMAGES) {
    test(`accepts image ${image.slice(0, 48)}`, async () => {
      const { sql } = getDb();
      const instance = await createInstance(sql, ownerId, toolbox.id, { image });

      expect(instance.status).toBe("pending");
    });
  }

  test("accepts a 63-character name", async () => {
    const { sql } = getDb();
    const instance = await createInstance(sql, ownerId, toolbox.id, { name: `a${"b".repeat(61)}c` });

    expect(instance.name).toHaveLength(63);
  });

  test("constraint rejects a direct insert", async () => {
    const { sql } = getDb();
    const error = await sqlError(sql`
      insert into public.tool_instances (owner_id, toolbox_id, name, image, container_port, host_port)
      values (${ownerId}, ${toolbox.id}, 'Bad Name', 'nginx', 8080, 30998)`);

    expect(error.code).toBe("23514");
    expect(error.constraint_name).toBe("tool_instances_name_dns_label");
  });
});

describe("instance names", () => {
  test("duplicate live name is rejected", async () => {
    const { sql } = getDb();
    await createInstance(sql, ownerId, toolbox.id, { name: "twin" });
    const error = await sqlError(createInstance(sql, ownerId, toolbox.id, { name: "twin" }));

    expect(error.code).toBe(SQLSTATE.nameTaken);
    expect(error.column_name).toBe("name");
  });

  test("name of a removed instance is reusable", async () => {
    const { sql } = getDb();
    const first = await createInstance(sql, ownerId, toolbox.id, { name: "phoenix" });
    await sql`update public.tool_instances set status = 'removed', status_reason_code = 'ContainerRemoved' where id = ${first.id}`;
    const second = await createInstance(sql, ownerId, toolbox.id, { name: "phoenix" });

    expect(second.id).not.toBe(first.id);
  });

  test("same name on another toolbox is allowed", async () => {
    const { sql } = getDb();
    const other = await createToolbox(sql, ownerId);
    await createInstance(sql, ownerId, toolbox.id, { name: "everywhere" });
    const instance = await createInstance(sql, ownerId, other.id, { name: "everywhere" });

    expect(instance.toolbox_id).toBe(other.id);
  });
});

describe("toolbox validation", () => {
  const INVALID_TOOLBOXES = [
    { case: "name with a space", args: ["my box", "http://10.0.0.1:30000", 30000, 30001, 30999], column: "name", constraint: "toolboxes_name_dns_label" },
    { case: "agent url without scheme", args: ["box-url", "10.0.0.1:30000", 30000, 30001, 30999], column: "agent_url", constraint: "toolboxes_agent_url_http" },
    { case: "agent port 0", args: ["box-port", "http://10.0.0.1", 0, 30001, 30999], column: "agent_port", constraint: "toolboxes_agent_port_range" },
    { case: "range end 70000", args: ["box-end", "http://10.0.0.1", 30000, 30001, 70000], column: "port_range_end", constraint: "toolboxes_port_range_end_range" },
    { case: "reversed range", args: ["box-rev", "http://10.0.0.1", 30000, 30999, 30001], column: "port_range_start", constraint: "toolboxes_port_range_ordered" },
  ] as const;

  for (const invalid of INVALID_TOOLBOXES) {
    test(`rejects ${invalid.case}`, async () => {
      const { sql } = getDb();
      const [name, url, agentPort, start, end] = invalid.args;
      const error = await sqlError(sql`select berth_private.create_toolbox(${ownerId}, ${name}, ${url}, ${agentPort}, ${start}, ${end})`);

      expect(error.code).toBe(SQLSTATE.invalidParameterValue);
      expect(error.column_name).toBe(invalid.column);
      expect(error.constraint_name).toBe(invalid.constraint);
    });
  }

  test("duplicate toolbox name is rejected", async () => {
    const { sql } = getDb();
    await createToolbox(sql, ownerId, { name: "dup-box" });
    const error = await sqlError(createToolbox(sql, ownerId, { name: "dup-box" }));

    expect(error.code).toBe(SQLSTATE.nameTaken);
  });
});
