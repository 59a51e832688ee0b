-- Registry of toolboxes (hosts) and tool instances (containers): types, tables, constraints,
-- indexes. Row level security, grants and functions come in the migrations after this one.

-- Schema for helpers, private tables and write functions. The Data API exposes only `public`
-- (and `graphql_public`), so nothing here is reachable through PostgREST.
create schema if not exists berth_private;
comment on schema berth_private is
  'Berth internals: write functions, private tables and trigger functions. Not exposed by the Data API. Only service_role may use it.';

-- Types ---------------------------------------------------------------------------------------

create type public.toolbox_status as enum (
  'provisioning', 'active', 'unreachable', 'draining', 'decommissioned'
);
comment on type public.toolbox_status is
  'Lifecycle of a host: provisioning until the first heartbeat, unreachable after repeated failed contacts, draining accepts no new instances, decommissioned is final.';

create type public.desired_state as enum ('running', 'stopped', 'removed');
comment on type public.desired_state is 'What the owner wants for an instance. The reconciler drives the container towards it.';

create type public.instance_status as enum (
  'pending', 'deploying', 'starting', 'running', 'stopping', 'stopped',
  'restarting', 'failed', 'unknown', 'removing', 'removed'
);
comment on type public.instance_status is
  'Lifecycle status of an instance. Changes are limited to the pairs in berth_private.instance_status_transitions.';

create type public.event_actor as enum ('user', 'agent', 'reconciler', 'system');
comment on type public.event_actor is 'Who caused a status change: an owner request, an agent report, the reconciler, or the platform itself.';

-- Validators used by check constraints ----------------------------------------------------------

-- Environment variable names as POSIX shells accept them, so the agent can pass them to Docker.
create function berth_private.is_env_name(value text)
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $$
  select value ~ '^[A-Za-z_][A-Za-z0-9_]{0,255}$'
$$;
comment on function berth_private.is_env_name(text) is
  'Tests whether a text is a valid environment variable name. Used by check constraints. No role needs to call it.';
revoke all on function berth_private.is_env_name(text) from public, anon, authenticated, service_role;

create function berth_private.is_env_map(value jsonb)
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $$
  select jsonb_typeof(value) = 'object'
    and not exists (
      select 1
      from jsonb_each(value) as entry
      where jsonb_typeof(entry.value) <> 'string'
        or not berth_private.is_env_name(entry.key)
    )
$$;
comment on function berth_private.is_env_map(jsonb) is
  'Tests whether a jsonb value is an object of environment variable names to string values. Used by check constraints. No role needs to call it.';
revoke all on function berth_private.is_env_map(jsonb) from public, anon, authenticated, service_role;

create function berth_private.are_env_names(value text[])
returns boolean
language sql
immutable
parallel safe
set search_path = ''
as $$
  select not exists (
    select 1
    from unnest(value) as name
    where name is null or not berth_private.is_env_name(name)
  )
  and cardinality(value) = (select count(distinct name) from unnest(value) as name)
$$;
comment on function berth_private.are_env_names(text[]) is
  'Tests whether an array holds distinct, valid environment variable names. Used by check constraints. No role needs to call it.';
revoke all on function berth_private.are_env_names(text[]) from public, anon, authenticated, service_role;

-- Toolboxes -----------------------------------------------------------------------------------

create table public.toolboxes (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  name text not null,
  agent_url text not null,
  agent_port integer not null default 30000,
  port_range_start integer not null default 30001,
  port_range_end integer not null default 30999,
  status public.toolbox_status not null default 'provisioning',
  agent_version text,
  last_heartbeat_at timestamptz,
  consecutive_failures integer not null default 0,
  last_failure text,
  token_version integer not null default 1,
  last_reconciled_at timestamptz,
  reconcile_lease_holder text,
  reconcile_lease_expires_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),

  constraint toolboxes_name_dns_label check (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  constraint toolboxes_agent_url_http check (agent_url ~ '^https?://[^\s/?#]+(/[^\s?#]*)?$' and length(agent_url) <= 2048),
  constraint toolboxes_agent_port_range check (agent_port between 1 and 65535),
  constraint toolboxes_port_range_start_range check (port_range_start between 1 and 65535),
  constraint toolboxes_port_range_end_range check (port_range_end between 1 and 65535),
  constraint toolboxes_port_range_ordered check (port_range_start <= port_range_end),
  constraint toolboxes_consecutive_failures_non_negative check (consecutive_failures >= 0),
  constraint toolboxes_token_version_positive check (token_version >= 1),
  constraint toolboxes_reconcile_lease_complete check (
    (reconcile_lease_holder is null) = (reconcile_lease_expires_at is null)
  ),
  -- Target of the composite foreign key that keeps an instance's owner equal to its toolbox's.
  constraint toolboxes_id_owner_key unique (id, owner_id)
);

comment on table public.toolboxes is
  'Hosts that run a Berth agent. Owners read their own rows. Only Berth''s write functions (service side) change them.';
comment on column public.toolboxes.agent_url is 'Base URL the control plane uses to reach the agent, for example https://host:30000.';
comment on column public.toolboxes.agent_port is 'Host port the agent listens on. The host port allocator never hands it to an instance.';
comment on column public.toolboxes.port_range_start is 'First host port (inclusive) the allocator may give to instances on this toolbox.';
comment on column public.toolboxes.port_range_end is 'Last host port (inclusive) the allocator may give to instances on this toolbox.';
comment on column public.toolboxes.consecutive_failures is 'Failed heartbeats or inventory polls since the last successful contact. At a threshold the toolbox becomes unreachable.';
comment on column public.toolboxes.token_version is 'Input to the agent token derivation. Bumping it revokes the previous token.';
comment on column public.toolboxes.reconcile_lease_holder is 'Reconciler pass that has claimed this toolbox until reconcile_lease_expires_at.';

-- Constraint comments state the rule. The write functions return them as the HINT of a 22023.
comment on constraint toolboxes_name_dns_label on public.toolboxes is
  'Use 1 to 63 lowercase letters, digits or hyphens, starting and ending with a letter or digit.';
comment on constraint toolboxes_agent_url_http on public.toolboxes is
  'Use an http:// or https:// URL without spaces, query or fragment, for example https://203.0.113.7:30000.';
comment on constraint toolboxes_agent_port_range on public.toolboxes is 'Use a port from 1 to 65535.';
comment on constraint toolboxes_port_range_start_range on public.toolboxes is 'Use a port from 1 to 65535.';
comment on constraint toolboxes_port_range_end_range on public.toolboxes is 'Use a port from 1 to 65535.';
comment on constraint toolboxes_port_range_ordered on public.toolboxes is 'The range start must not be above its end.';

create index toolboxes_owner_id_idx on public.toolboxes (owner_id);
create unique index toolboxes_owner_name_live_key on public.toolboxes (owner_id, name)
  where status <> 'decommissioned';
-- The reconciler claims the least recently reconciled toolboxes first.
create index toolboxes_reconcile_order_idx on public.toolboxes (last_reconciled_at nulls first)
  where status <> 'decommissioned';

-- Tool instances ------------------------------------------------------------------------------

create table public.tool_instances (
  id uuid primary key default gen_random_uuid(),
  owner_id uuid not null references auth.users (id) on delete cascade,
  toolbox_id uuid not null,

  -- Specification.
  name text not null,
  image text not null,
  command text[],
  env jsonb not null default '{}'::jsonb,
  secret_names text[] not null default '{}',
  container_port integer not null,
  host_port integer not null,
  mcp_transport text not null default 'streamable_http',
  mcp_path text not null default '/mcp',
  memory_mb integer,
  cpus numeric(6, 2),

  -- Intent.
  desired_state public.desired_state not null default 'running',
  generation bigint not null default 1,
  spec_generation bigint not null default 1,

  -- Lifecycle.
  status public.instance_status not null default 'pending',
  status_reason_code text,
  status_reason text,
  status_changed_at timestamptz not null default now(),

  -- Observation, as reported by the agent.
  container_id text,
  docker_state text,
  exit_code integer,
  oom_killed boolean,
  restart_count integer,
  health text,
  observed_generation bigint,
  started_at timestamptz,
  finished_at timestamptz,
  observed_at timestamptz,

  -- Crash-loop bookkeeping.
  restart_attempts integer not null default 0,
  next_attempt_at timestamptz,

  -- Concurrency.
  version bigint not null default 1,
  lease_holder text,
  lease_nonce uuid,
  lease_expires_at timestamptz,

  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),

  constraint tool_instances_toolbox_owner_fkey foreign key (toolbox_id, owner_id)
    references public.toolboxes (id, owner_id) on delete cascade,
  constraint tool_instances_id_owner_key unique (id, owner_id),

  constraint tool_instances_name_dns_label check (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  -- Docker's reference grammar: [registry[:port]/]path[:tag][@algorithm:hex].
  constraint tool_instances_image_reference check (
    length(image) <= 512
    and image ~ (
      '^([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*(:[0-9]{1,5})?/)?'
      || '[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*'
      || '(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?'
      || '(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$'
    )
  ),
  constraint tool_instances_command_no_nulls check (command is null or array_position(command, null) is null),
  constraint tool_instances_env_string_map check (berth_private.is_env_map(env)),
  constraint tool_instances_secret_names_valid check (berth_private.are_env_names(secret_names)),
  constraint tool_instances_secret_names_not_in_env check (not (env ?| secret_names)),
  constraint tool_instances_container_port_range check (container_port between 1 and 65535),
  constraint tool_instances_host_port_range check (host_port between 1 and 65535),
  constraint tool_instances_mcp_transport_known check (mcp_transport in ('streamable_http', 'sse')),
  constraint tool_instances_mcp_path_format check (mcp_path ~ '^/[A-Za-z0-9._~!$&''()*+,;=:@%/-]{0,255}$'),
  constraint tool_instances_memory_mb_positive check (memory_mb is null or memory_mb > 0),
  constraint tool_instances_cpus_positive check (cpus is null or cpus > 0),
  constraint tool_instances_generation_positive check (generation >= 1),
  constraint tool_instances_spec_generation_not_ahead check (spec_generation between 1 and generation),
  constraint tool_instances_status_reason_has_code check (status_reason is null or status_reason_code is not null),
  constraint tool_instances_status_reason_length check (length(status_reason) <= 4096),
  constraint tool_instances_restart_attempts_non_negative check (restart_attempts >= 0),
  constraint tool_instances_lease_complete check (
    (lease_holder is null) = (lease_nonce is null)
    and (lease_nonce is null) = (lease_expires_at is null)
  )
);

comment on table public.tool_instances is
  'MCP server containers: specification, intent, lifecycle status, last observation and lease. Owners read their own rows. Only Berth''s write functions (service side) change them.';
comment on column public.tool_instances.env is 'Non-secret environment variables, name to value. Secret values live in berth_private.instance_secrets.';
comment on column public.tool_instances.secret_names is 'Names of the secret environment variables. Their values are never stored in this table.';
comment on column public.tool_instances.host_port is 'Host port published for container_port, allocated from the toolbox''s range. Unique per toolbox among rows that are not removed.';
comment on column public.tool_instances.generation is 'Bumped on every change of specification or intent. The reconciler has caught up when observed_generation reaches spec_generation and status matches desired_state.';
comment on column public.tool_instances.spec_generation is 'Generation of the last specification change. A container labelled with an older generation must be recreated. Intent-only changes (start, stop) do not move it.';
comment on column public.tool_instances.status_reason_code is 'Machine-readable reason for the current status, one of berth_private.reason_codes. Clients branch on this code.';
comment on column public.tool_instances.status_reason is 'Human-readable message that goes with status_reason_code. Never parsed.';
comment on column public.tool_instances.status_changed_at is 'When status last changed. Transitional statuses past a deadline count as stuck.';
comment on column public.tool_instances.docker_state is 'Docker''s word for the container state (created, running, exited, ...). Null when no container was observed.';
comment on column public.tool_instances.observed_generation is 'Generation label of the observed container.';
comment on column public.tool_instances.observed_at is 'When the recorded observation last changed. Identical reports do not rewrite the row. The toolbox''s last_heartbeat_at tells how fresh it is.';
comment on column public.tool_instances.restart_attempts is 'Restarts the reconciler made since the owner last recorded intent. Past a limit the instance is marked failed.';
comment on column public.tool_instances.next_attempt_at is 'Earliest time the reconciler may restart the container again (crash-loop back-off).';
comment on column public.tool_instances.version is 'Bumped by trigger on every update. Writers pass the version they read to detect lost updates.';
comment on column public.tool_instances.lease_nonce is 'Proof of the current lease. Writes under a lease must present it before lease_expires_at.';

comment on constraint tool_instances_name_dns_label on public.tool_instances is
  'Use 1 to 63 lowercase letters, digits or hyphens, starting and ending with a letter or digit.';
comment on constraint tool_instances_image_reference on public.tool_instances is
  'Use a Docker image reference such as nginx:1.27, ghcr.io/owner/name:tag or name@sha256:<64 hex digits>, without spaces.';
comment on constraint tool_instances_command_no_nulls on public.tool_instances is 'Command arguments must not be null.';
comment on constraint tool_instances_env_string_map on public.tool_instances is
  'Use a JSON object whose keys are environment variable names (letters, digits, underscores, not starting with a digit) and whose values are strings.';
comment on constraint tool_instances_secret_names_valid on public.tool_instances is
  'Secret names are distinct environment variable names (letters, digits, underscores, not starting with a digit).';
comment on constraint tool_instances_secret_names_not_in_env on public.tool_instances is
  'A name is either a plain environment variable or a secret, not both.';
comment on constraint tool_instances_container_port_range on public.tool_instances is 'Use a port from 1 to 65535.';
comment on constraint tool_instances_host_port_range on public.tool_instances is 'Use a port from 1 to 65535.';
comment on constraint tool_instances_mcp_transport_known on public.tool_instances is 'Use streamable_http or sse.';
comment on constraint tool_instances_mcp_path_format on public.tool_instances is
  'Use an absolute URL path such as /mcp, without spaces, query or fragment.';
comment on constraint tool_instances_memory_mb_positive on public.tool_instances is 'Use a memory limit above 0 MB, or none.';
comment on constraint tool_instances_cpus_positive on public.tool_instances is 'Use a CPU limit above 0, or none.';

create index tool_instances_owner_id_idx on public.tool_instances (owner_id);
create index tool_instances_toolbox_id_idx on public.tool_instances (toolbox_id);
create unique index tool_instances_toolbox_name_live_key on public.tool_instances (toolbox_id, name)
  where status <> 'removed';
-- The allocator relies on this index: two concurrent inserts of one port cannot both commit.
create unique index tool_instances_toolbox_host_port_live_key on public.tool_instances (toolbox_id, host_port)
  where status <> 'removed';
-- The reconciler looks for instances stuck in a transitional status.
create index tool_instances_transitional_idx on public.tool_instances (status_changed_at)
  where status in ('deploying', 'starting', 'stopping', 'restarting', 'removing');

-- Instance events -----------------------------------------------------------------------------

create table public.instance_events (
  id bigint generated always as identity primary key,
  instance_id uuid not null,
  owner_id uuid not null references auth.users (id) on delete cascade,
  toolbox_id uuid not null references public.toolboxes (id) on delete cascade,
  from_status public.instance_status,
  to_status public.instance_status not null,
  actor public.event_actor not null,
  reason_code text,
  message text,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),

  constraint instance_events_instance_owner_fkey foreign key (instance_id, owner_id)
    references public.tool_instances (id, owner_id) on delete cascade,
  constraint instance_events_details_object check (jsonb_typeof(details) = 'object')
);

comment on table public.instance_events is
  'Append-only history of instance status changes, one row per change, written by trigger in the same transaction. Owners read their own rows. Nobody updates or deletes them.';
comment on column public.instance_events.from_status is 'Status before the change. Null for the event that records the creation of the instance.';

create index instance_events_instance_id_idx on public.instance_events (instance_id, id);
create index instance_events_owner_id_idx on public.instance_events (owner_id);
create index instance_events_toolbox_id_idx on public.instance_events (toolbox_id);

-- Reconcile runs ------------------------------------------------------------------------------

create table public.reconcile_runs (
  id uuid primary key default gen_random_uuid(),
  holder text not null,
  status text not null default 'running',
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  duration_ms integer,
  toolboxes_checked integer not null default 0,
  instances_checked integer not null default 0,
  drift_found integer not null default 0,
  repairs_made integer not null default 0,
  failures integer not null default 0,
  errors jsonb not null default '[]'::jsonb,

  constraint reconcile_runs_status_known check (status in ('running', 'succeeded', 'partial', 'failed')),
  constraint reconcile_runs_counts_non_negative check (
    toolboxes_checked >= 0 and instances_checked >= 0 and drift_found >= 0
    and repairs_made >= 0 and failures >= 0
  ),
  constraint reconcile_runs_duration_non_negative check (duration_ms is null or duration_ms >= 0),
  constraint reconcile_runs_errors_array check (jsonb_typeof(errors) = 'array'),
  constraint reconcile_runs_finished_complete check ((status = 'running') = (finished_at is null))
);

comment on table public.reconcile_runs is
  'One row per reconciler pass with what it checked, found and repaired. Readable by service_role only. Written by the reconcile run functions.';

create index reconcile_runs_started_at_idx on public.reconcile_runs (started_at desc);

-- Idempotency keys ----------------------------------------------------------------------------

create table berth_private.idempotency_keys (
  owner_id uuid not null references auth.users (id) on delete cascade,
  key text not null,
  request_hash text not null,
  response_status integer,
  response jsonb,
  created_at timestamptz not null default now(),
  completed_at timestamptz,

  primary key (owner_id, key),
  constraint idempotency_keys_key_length check (length(key) between 1 and 255),
  constraint idempotency_keys_response_complete check (
    (response_status is null) = (completed_at is null)
    and (response is null or response_status is not null)
  ),
  constraint idempotency_keys_response_status_range check (response_status is null or response_status between 100 and 599)
);

comment on table berth_private.idempotency_keys is
  'Idempotency-Key values of create requests with the stored response, so a retried deploy replays instead of creating twice. Used by the write functions only.';

-- TODO: nothing deletes old keys yet. A scheduled purge (for example of keys older than a day)
-- still has to be added; this index is there for it.
create index idempotency_keys_created_at_idx on berth_private.idempotency_keys (created_at);
