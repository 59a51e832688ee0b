// The wording of field problems that the agent, the functions and the client return in
// `details.fields` of an `invalid_request` error. Each message follows the field's path, so
// `${field} ${message}` reads as a sentence: "image is required", "port must be a whole number".
import { describe, expect, test } from "vitest";
import { z } from "zod";
import {
  fieldErrorMap,
  fieldIssues,
  HeartbeatRequest,
  InstanceDeployRequest,
  InstanceEnsureRequest,
  InstanceEventsRequest,
  ToolboxCreateRequest,
  type FieldIssue,
} from "@berth/shared";

const TOOLBOX_ID = "7c1d3f4e-55aa-4b6c-9d2e-0f1a2b3c4d5e";
const DEPLOY = { toolbox_id: TOOLBOX_ID, name: "search", image: "ghcr.io/example/search:1.0", port: 8080 };
const ENSURE = { generation: 1, image: "ghcr.io/example/search:1.0", port: 8080, host_port: 41000, desired_state: "running" };
const HEARTBEAT = { toolbox_id: TOOLBOX_ID, agent_version: "1.0.0", engine_version: "5.0", sent_at: "2025-01-31T12:00:00Z", instances: [], events: [] };
const ENV_NAME_RULE = "must start with a letter or underscore and contain only letters, digits and underscores";

/** Parses as the agent, the functions and the client do, and returns the field issues. */
function issuesOf(schema: z.ZodType, input: unknown): FieldIssue[] {
  const result = schema.safeParse(input, { error: fieldErrorMap });
  if (result.success) throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
  return fieldIssues(result.error);
}

describe("field messages of request bodies", () => {
  test.each<[string, z.ZodType, unknown, FieldIssue[]]>([
    ["deploy without fields", InstanceDeployRequest, {}, [
      { field: "toolbox_id", message: "is required" },
      { field: "name", message: "is required" },
      { field: "image", message: "is required" },
      { field: "port", message: "is required" },
    ]],
    ["missing body", InstanceDeployRequest, undefined, [{ field: "body", message: "is required" }]],
    ["array body", InstanceDeployRequest, [], [{ field: "body", message: "must be an object" }]],
    ["fractional port", InstanceDeployRequest, { ...DEPLOY, port: 80.5 }, [{ field: "port", message: "must be a whole number" }]],
    ["port as string", InstanceDeployRequest, { ...DEPLOY, port: "8080" }, [{ field: "port", message: "must be a whole number" }]],
    ["port out of range", InstanceDeployRequest, { ...DEPLOY, port: 70000 }, [{ field: "port", message: "must be at most 65535" }]],
    ["name as number", InstanceDeployRequest, { ...DEPLOY, name: 5 }, [{ field: "name", message: "must be a string" }]],
    ["image null", InstanceDeployRequest, { ...DEPLOY, image: null }, [{ field: "image", message: "must be a string" }]],
    ["toolbox id malformed", InstanceDeployRequest, { ...DEPLOY, toolbox_id: "abc" }, [{ field: "toolbox_id", message: "must be a UUID" }]],
    ["toolbox id as number", InstanceDeployRequest, { ...DEPLOY, toolbox_id: 5 }, [{ field: "toolbox_id", message: "must be a UUID" }]],
    ["env value as number", InstanceDeployRequest, { ...DEPLOY, env: { FOO: 1 } }, [{ field: "env.FOO", message: "must be a string" }]],
    ["env name invalid", InstanceDeployRequest, { ...DEPLOY, env: { "1BAD": "x" } }, [{ field: "env.1BAD", message: `is an invalid key: it ${ENV_NAME_RULE}` }]],
    ["env as string", InstanceDeployRequest, { ...DEPLOY, env: "FOO=1" }, [{ field: "env", message: "must be an object" }]],
    ["secrets as array", InstanceDeployRequest, { ...DEPLOY, secrets: [] }, [{ field: "secrets", message: "must be an object" }]],
    ["command as string", InstanceDeployRequest, { ...DEPLOY, command: "ls -l" }, [{ field: "command", message: "must be an array" }]],
    ["command argument as number", InstanceDeployRequest, { ...DEPLOY, command: ["ls", 1] }, [{ field: "command.1", message: "must be a string" }]],
    ["unknown field", InstanceDeployRequest, { ...DEPLOY, extra: 1 }, [{ field: "body", message: 'contains unknown field "extra"' }]],
    ["unknown fields", InstanceDeployRequest, { ...DEPLOY, extra: 1, other: 2 }, [{ field: "body", message: 'contains unknown fields "extra", "other"' }]],
    ["toolbox without agent url", ToolboxCreateRequest, { name: "main" }, [{ field: "agent_url", message: "is required" }]],
    ["events limit as number", InstanceEventsRequest, { limit: 5 }, [{ field: "limit", message: "must be a string" }]],
  ])("%s", (_name, schema, input, expected) => {
    expect(issuesOf(schema, input)).toEqual(expected);
  });
});

describe("field messages of agent bodies", () => {
  test.each<[string, z.ZodType, unknown, FieldIssue[]]>([
    ["unknown desired state", InstanceEnsureRequest, { ...ENSURE, desired_state: "gone" }, [{ field: "desired_state", message: 'must be one of "running", "stopped"' }]],
    ["cpus as string", InstanceEnsureRequest, { ...ENSURE, cpus: "2" }, [{ field: "cpus", message: "must be a number" }]],
    ["fractional memory", InstanceEnsureRequest, { ...ENSURE, memory_mb: 1.5 }, [{ field: "memory_mb", message: "must be a whole number" }]],
    ["generation missing", InstanceEnsureRequest, { ...ENSURE, generation: undefined }, [{ field: "generation", message: "is required" }]],
    ["heartbeat time malformed", HeartbeatRequest, { ...HEARTBEAT, sent_at: "yesterday" }, [{ field: "sent_at", message: "must be an ISO 8601 date and time such as 2025-01-31T12:00:00Z" }]],
    ["heartbeat events as object", HeartbeatRequest, { ...HEARTBEAT, events: {} }, [{ field: "events", message: "must be an array" }]],
    ["observation flag as string", HeartbeatRequest, {
      ...HEARTBEAT,
      instances: [{ instance_id: TOOLBOX_ID, container_id: "c1", state: "running", exit_code: null, oom_killed: "no", restart_count: 0, generation: 1, host_port: 41000, started_at: null, finished_at: null, health: null }],
    }, [{ field: "instances.0.oom_killed", message: "must be true or false" }]],
  ])("%s", (_name, schema, input, expected) => {
    expect(issuesOf(schema, input)).toEqual(expected);
  });
});

describe("field messages of other checks", () => {
  test.each<[string, z.ZodType, unknown, string]>([
    ["short string", z.string().min(3), "ab", "must have at least 3 characters"],
    ["empty string", z.string().min(1), "", "must not be empty"],
    ["long string", z.string().max(2), "abc", "must have at most 2 characters"],
    ["string of wrong length", z.string().length(4), "abc", "must have exactly 4 characters"],
    ["empty array", z.array(z.string()).min(1), [], "must not be empty"],
    ["long array", z.array(z.string()).max(1), ["a", "b"], "must have at most 1 item"],
    ["short array", z.array(z.string()).min(2), ["a"], "must have at least 2 items"],
    ["number not above", z.number().gt(0), 0, "must be greater than 0"],
    ["number not below", z.number().lt(10), 10, "must be less than 10"],
    ["number too small", z.number().min(1), 0, "must be at least 1"],
    ["number not a multiple", z.number().multipleOf(5), 7, "must be a multiple of 5"],
    ["literal", z.literal("ok"), "no", 'must be "ok"'],
    ["prefix", z.string().startsWith("/"), "mcp", 'must start with "/"'],
    ["pattern", z.string().regex(/^a+$/), "b", "has an invalid format"],
    ["union", z.union([z.string(), z.number()]), true, "does not match any accepted form"],
    ["refinement", z.string().refine(() => false), "x", "is invalid"],
  ])("%s", (_name, schema, input, message) => {
    expect(issuesOf(schema, input)).toEqual([{ field: "body", message }]);
  });

  test("schema message wins", () => {
    expect(issuesOf(z.string().min(2, "must be long enough"), "a")).toEqual([{ field: "body", message: "must be long enough" }]);
  });
});
