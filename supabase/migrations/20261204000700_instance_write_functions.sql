-- Write functions for instances, called by the edge functions and the reconciler (service side).
-- Each one checks what makes the write safe (owner, version, lease) on a locked row, so a stale
-- writer can never overwrite a newer state. All are security definer with an empty search_path
-- and executable by service_role only.

-- Create --------------------------------------------------------------------------------------

create function berth_private.lock_toolbox_for_deploy(p_owner_id uuid, p_toolbox_id uuid)
returns public.toolboxes
language plpgsql
set search_path = ''
as $$
declare
  box public.toolboxes;
begin
  -- FOR SHARE lets deploys run side by side but waits for decommission_toolbox, which takes
  -- FOR UPDATE, so an instance cannot appear on a toolbox that is being decommissioned.
  select * into box from public.toolboxes
  where id = p_toolbox_id and owner_id = p_owner_id
  for share;

  -- Another owner's toolbox is reported exactly like a missing one.
  if not found then
    raise exception 'toolbox % not found', p_toolbox_id
      using errcode = 'BT007', detail = format('toolbox_id=%s', p_toolbox_id);
  end if;
  if box.status in ('draining', 'decommissioned') then
    raise exception 'toolbox % (%) is % and accepts no new instances', box.id, box.name, box.status
      using errcode = 'BT009', detail = format('toolbox_id=%s status=%s', box.id, box.status);
  end if;
  return box;
end;
$$;

comment on function berth_private.lock_toolbox_for_deploy(uuid, uuid) is
  'Locks an owner''s toolbox against decommissioning while an instance is created on it. Raises BT007 when missing or owned by someone else, BT009 when draining or decommissioned. Internal to create_instance.';
revoke all on function berth_private.lock_toolbox_for_deploy(uuid, uuid) from public, anon, authenticated, service_role;

create function berth_private.check_instance_arguments(p_desired_state text, p_secrets jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if p_desired_state is null or p_desired_state not in ('running', 'stopped') then
    raise exception 'invalid desired_state %: a new instance is running or stopped', coalesce(p_desired_state, 'null')
      using errcode = '22023', table = 'tool_instances', column = 'desired_state', detail = 'column=desired_state';
  end if;
  if pg_catalog.jsonb_typeof(p_secrets) is distinct from 'object'
     or exists (select 1 from pg_catalog.jsonb_each(p_secrets) as s where pg_catalog.jsonb_typeof(s.value) <> 'string') then
    raise exception 'invalid secrets: expected a JSON object of names to string values'
      using errcode = '22023', table = 'tool_instances', column = 'secret_names', detail = 'column=secret_names';
  end if;
end;
$$;

comment on function berth_private.check_instance_arguments(text, jsonb) is
  'Validates the create_instance arguments that no table constraint covers. Raises 22023 naming the column. Internal to create_instance.';
revoke all on function berth_private.check_instance_arguments(text, jsonb) from public, anon, authenticated, service_role;

create function berth_private.create_instance(
  p_owner_id uuid,
  p_toolbox_id uuid,
  p_name text,
  p_image text,
  p_container_port integer,
  p_env jsonb default '{}'::jsonb,
  p_secrets jsonb default '{}'::jsonb,
  p_command text[] default null,
  p_mcp_transport text default 'streamable_http',
  p_mcp_path text default '/mcp',
  p_desired_state text default 'running',
  p_memory_mb integer default null,
  p_cpus numeric default null
)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  box public.toolboxes;
  candidate integer;
  created public.tool_instances;
  violated text;
  violated_column text;
  secret record;
begin
  box := berth_private.lock_toolbox_for_deploy(p_owner_id, p_toolbox_id);
  perform berth_private.check_instance_arguments(p_desired_state, coalesce(p_secrets, '{}'::jsonb));
  perform berth_private.set_event_context('user');

  loop
    candidate := berth_private.next_free_host_port(box.id);
    if candidate is null then
      perform berth_private.raise_ports_exhausted(box.id);
    end if;

    begin
      insert into public.tool_instances (
        owner_id, toolbox_id, name, image, command, env, secret_names, container_port, host_port,
        mcp_transport, mcp_path, memory_mb, cpus, desired_state, status_reason_code, status_reason
      ) values (
        p_owner_id, box.id, p_name, p_image, p_command, coalesce(p_env, '{}'::jsonb),
        array(select pg_catalog.jsonb_object_keys(coalesce(p_secrets, '{}'::jsonb)) order by 1),
        p_container_port, candidate, p_mcp_transport, p_mcp_path, p_memory_mb, p_cpus,
        p_desired_state::public.desired_state, 'Created', 'Instance created.'
      )
      returning * into created;
      exit;
    exception
      when unique_violation then
        get stacked diagnostics violated = constraint_name;
        if violated = 'tool_instances_toolbox_name_live_key' then
          raise exception 'instance name % is already used on toolbox %', p_name, box.id
            using errcode = 'BT008', table = 'tool_instances', column = 'name',
                  detail = format('column=name toolbox_id=%s', box.id);
        elsif violated <> 'tool_instances_toolbox_host_port_live_key' then
          raise;
        end if;
        -- Another transaction committed this port first. The loop picks the next free one.
      when check_violation then
        get stacked diagnostics violated = constraint_name;
        perform berth_private.raise_invalid_value('public.tool_instances', violated);
      when not_null_violation then
        get stacked diagnostics violated_column = column_name;
        perform berth_private.raise_invalid_value('public.tool_instances', null, violated_column);
    end;
  end loop;

  for secret in select key, value from pg_catalog.jsonb_each_text(coalesce(p_secrets, '{}'::jsonb)) loop
    perform berth_private.store_instance_secret(created.id, secret.key, secret.value);
  end loop;

  perform berth_private.clear_event_context();
  return created;
end;
$$;

comment on function berth_private.create_instance(uuid, uuid, text, text, integer, jsonb, jsonb, text[], text, text, text, integer, numeric) is
  'Creates a pending instance on an owner''s toolbox: validates the spec (22023 naming the column), allocates a host port (BT005 when the range is exhausted), rejects a live duplicate name (BT008) and stores the secret values out of the row. Callable by service_role.';
revoke all on function berth_private.create_instance(uuid, uuid, text, text, integer, jsonb, jsonb, text[], text, text, text, integer, numeric)
  from public, anon, authenticated;
grant execute on function berth_private.create_instance(uuid, uuid, text, text, integer, jsonb, jsonb, text[], text, text, text, integer, numeric)
  to service_role;

-- Intent --------------------------------------------------------------------------------------

create function berth_private.record_intent(p_instance_id uuid, p_expected_version bigint, p_desired_state text)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  current public.tool_instances;
  updated public.tool_instances;
begin
  if p_desired_state is null or p_desired_state not in ('running', 'stopped', 'removed') then
    raise exception 'invalid desired_state %: expected running, stopped or removed', coalesce(p_desired_state, 'null')
      using errcode = '22023', table = 'tool_instances', column = 'desired_state', detail = 'column=desired_state';
  end if;

  current := berth_private.lock_instance_at_version(p_instance_id, p_expected_version);
  if current.desired_state = 'removed' and p_desired_state <> 'removed' then
    raise exception 'instance % is being removed and cannot be %', p_instance_id, p_desired_state
      using errcode = 'BT012', detail = format('instance_id=%s desired_state=removed', p_instance_id);
  end if;

  -- Every request is new intent, even when desired_state stays the same: a start on a failed
  -- instance is a request to try again, so it also clears the crash-loop back-off.
  update public.tool_instances
  set desired_state = p_desired_state::public.desired_state,
      generation = generation + 1,
      restart_attempts = 0,
      next_attempt_at = null
  where id = p_instance_id
  returning * into updated;
  return updated;
end;
$$;

comment on function berth_private.record_intent(uuid, bigint, text) is
  'Records the owner''s desired state and bumps the generation, only if the instance is still at p_expected_version (BT002 otherwise, nothing written). Removal cannot be taken back (BT012). Callable by service_role.';
revoke all on function berth_private.record_intent(uuid, bigint, text) from public, anon, authenticated;
grant execute on function berth_private.record_intent(uuid, bigint, text) to service_role;

-- Leases --------------------------------------------------------------------------------------

create function berth_private.claim_instance_lease(p_instance_id uuid, p_holder text, p_ttl_seconds integer)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  current public.tool_instances;
  claimed public.tool_instances;
begin
  if p_holder is null or length(p_holder) not between 1 and 200 then
    raise exception 'invalid lease holder: expected 1 to 200 characters'
      using errcode = '22023', table = 'tool_instances', column = 'lease_holder', detail = 'column=lease_holder';
  end if;
  if p_ttl_seconds is null or p_ttl_seconds not between 1 and 3600 then
    raise exception 'invalid lease ttl % seconds: expected 1 to 3600', coalesce(p_ttl_seconds::text, 'null')
      using errcode = '22023', table = 'tool_instances', column = 'lease_expires_at', detail = 'column=lease_expires_at';
  end if;

  current := berth_private.lock_live_instance(p_instance_id);

  -- The holder of an unexpired lease may claim again to renew it. The new nonce replaces the old.
  if current.lease_nonce is not null
     and current.lease_expires_at > pg_catalog.clock_timestamp()
     and current.lease_holder is distinct from p_holder then
    raise exception 'instance % is leased by % until %', p_instance_id, current.lease_holder, current.lease_expires_at
      using errcode = 'BT003',
            detail = format('instance_id=%s lease_holder=%s lease_expires_at=%s', p_instance_id, current.lease_holder, current.lease_expires_at);
  end if;

  update public.tool_instances
  set lease_holder = p_holder,
      lease_nonce = pg_catalog.gen_random_uuid(),
      lease_expires_at = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_ttl_seconds)
  where id = p_instance_id
  returning * into claimed;
  return claimed;
end;
$$;

comment on function berth_private.claim_instance_lease(uuid, text, integer) is
  'Claims the lease of a live instance for p_ttl_seconds by the database clock and returns the row with the new lease_nonce and lease_expires_at. Raises BT003 while another holder''s lease is unexpired. Callable by service_role.';
revoke all on function berth_private.claim_instance_lease(uuid, text, integer) from public, anon, authenticated;
grant execute on function berth_private.claim_instance_lease(uuid, text, integer) to service_role;

create function berth_private.release_instance_lease(p_instance_id uuid, p_lease_nonce uuid)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.tool_instances
  set lease_holder = null, lease_nonce = null, lease_expires_at = null
  where id = p_instance_id and lease_nonce = p_lease_nonce;
  return found;
end;
$$;

comment on function berth_private.release_instance_lease(uuid, uuid) is
  'Releases a lease when p_lease_nonce is the current one and returns true. With any other nonce it writes nothing and returns false. Callable by service_role.';
revoke all on function berth_private.release_instance_lease(uuid, uuid) from public, anon, authenticated;
grant execute on function berth_private.release_instance_lease(uuid, uuid) to service_role;

-- Status --------------------------------------------------------------------------------------

create function berth_private.check_status_arguments(p_status text, p_reason_code text)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if p_status is null or not (p_status = any (pg_catalog.enum_range(null::public.instance_status)::text[])) then
    raise exception 'invalid status %: expected one of %', coalesce(p_status, 'null'), pg_catalog.enum_range(null::public.instance_status)
      using errcode = '22023', table = 'tool_instances', column = 'status', detail = 'column=status';
  end if;
  if p_reason_code is null then
    raise exception 'missing reason code: every status write names its reason'
      using errcode = '22023', table = 'tool_instances', column = 'status_reason_code', detail = 'column=status_reason_code';
  end if;
  perform berth_private.check_reason_code(p_reason_code);
end;
$$;

comment on function berth_private.check_status_arguments(text, text) is
  'Validates a status and its reason code. Raises 22023 naming the column. Internal to the status functions.';
revoke all on function berth_private.check_status_arguments(text, text) from public, anon, authenticated, service_role;

-- Writes status and reason on a row the caller has locked and checked.
create function berth_private.write_status(
  p_instance_id uuid, p_status text, p_reason_code text, p_message text, p_actor text, p_details jsonb
)
returns public.tool_instances
language plpgsql
set search_path = ''
as $$
declare
  updated public.tool_instances;
begin
  perform berth_private.set_event_context(p_actor, p_details);
  update public.tool_instances
  set status = p_status::public.instance_status,
      status_reason_code = p_reason_code,
      status_reason = p_message
  where id = p_instance_id
  returning * into updated;
  perform berth_private.clear_event_context();

  -- An update that changes nothing is skipped by trigger. The row is then returned as it is.
  if updated.id is null then
    select * into updated from public.tool_instances where id = p_instance_id;
  end if;
  return updated;
end;
$$;

comment on function berth_private.write_status(uuid, text, text, text, text, jsonb) is
  'Writes status and reason with the event context set. Internal to set_instance_status and set_instance_status_at_version.';
revoke all on function berth_private.write_status(uuid, text, text, text, text, jsonb) from public, anon, authenticated, service_role;

create function berth_private.set_instance_status(
  p_instance_id uuid,
  p_lease_nonce uuid,
  p_status text,
  p_reason_code text,
  p_message text default null,
  p_actor text default 'system',
  p_details jsonb default null
)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform berth_private.check_status_arguments(p_status, p_reason_code);
  perform berth_private.lock_leased_instance(p_instance_id, p_lease_nonce);
  return berth_private.write_status(p_instance_id, p_status, p_reason_code, p_message, p_actor, p_details);
end;
$$;

comment on function berth_private.set_instance_status(uuid, uuid, text, text, text, text, jsonb) is
  'Sets status and reason under a lease: nothing is written unless p_lease_nonce is current and unexpired (BT004). A transition outside the table raises BT001. A status change appends one event with p_actor and p_details. Callable by service_role.';
revoke all on function berth_private.set_instance_status(uuid, uuid, text, text, text, text, jsonb) from public, anon, authenticated;
grant execute on function berth_private.set_instance_status(uuid, uuid, text, text, text, text, jsonb) to service_role;

create function berth_private.set_instance_status_at_version(
  p_instance_id uuid,
  p_expected_version bigint,
  p_status text,
  p_reason_code text,
  p_message text default null,
  p_actor text default 'system',
  p_details jsonb default null
)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  current public.tool_instances;
begin
  perform berth_private.check_status_arguments(p_status, p_reason_code);
  current := berth_private.lock_instance_at_version(p_instance_id, p_expected_version);

  -- A leased instance belongs to the operation driving it. Reports wait until it finishes.
  if current.lease_nonce is not null and current.lease_expires_at > pg_catalog.clock_timestamp() then
    raise exception 'instance % is leased by % until %', p_instance_id, current.lease_holder, current.lease_expires_at
      using errcode = 'BT003',
            detail = format('instance_id=%s lease_holder=%s lease_expires_at=%s', p_instance_id, current.lease_holder, current.lease_expires_at);
  end if;
  return berth_private.write_status(p_instance_id, p_status, p_reason_code, p_message, p_actor, p_details);
end;
$$;

comment on function berth_private.set_instance_status_at_version(uuid, bigint, text, text, text, text, jsonb) is
  'Sets status and reason without a lease, for heartbeat reports: only if the instance is at p_expected_version (BT002) and nobody holds an unexpired lease (BT003). Callable by service_role.';
revoke all on function berth_private.set_instance_status_at_version(uuid, bigint, text, text, text, text, jsonb) from public, anon, authenticated;
grant execute on function berth_private.set_instance_status_at_version(uuid, bigint, text, text, text, text, jsonb) to service_role;

-- Crash-loop back-off -------------------------------------------------------------------------

create function berth_private.record_restart_attempt(
  p_instance_id uuid,
  p_lease_nonce uuid,
  p_backoff_base_seconds integer default 10,
  p_backoff_max_seconds integer default 300
)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  updated public.tool_instances;
begin
  if p_backoff_base_seconds is null or p_backoff_max_seconds is null
     or p_backoff_base_seconds < 1 or p_backoff_max_seconds < p_backoff_base_seconds then
    raise exception 'invalid back-off: expected 1 <= base seconds <= max seconds'
      using errcode = '22023', table = 'tool_instances', column = 'next_attempt_at', detail = 'column=next_attempt_at';
  end if;

  perform berth_private.lock_leased_instance(p_instance_id, p_lease_nonce);

  -- Exponential back-off by the database clock: base, 2 x base, 4 x base, ... up to max.
  update public.tool_instances
  set restart_attempts = restart_attempts + 1,
      next_attempt_at = pg_catalog.clock_timestamp() + pg_catalog.make_interval(
        secs => least(p_backoff_max_seconds::double precision, p_backoff_base_seconds * power(2, least(restart_attempts, 30)))
      )
  where id = p_instance_id
  returning * into updated;
  return updated;
end;
$$;

comment on function berth_private.record_restart_attempt(uuid, uuid, integer, integer) is
  'Counts one reconciler restart under a lease and sets next_attempt_at with exponential back-off by the database clock. record_intent resets both. Callable by service_role.';
revoke all on function berth_private.record_restart_attempt(uuid, uuid, integer, integer) from public, anon, authenticated;
grant execute on function berth_private.record_restart_attempt(uuid, uuid, integer, integer) to service_role;

-- Host port -----------------------------------------------------------------------------------

create function berth_private.reallocate_host_port(p_instance_id uuid, p_lease_nonce uuid)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  current public.tool_instances;
  candidate integer;
  updated public.tool_instances;
begin
  current := berth_private.lock_leased_instance(p_instance_id, p_lease_nonce);

  loop
    candidate := berth_private.next_free_host_port(current.toolbox_id, current.host_port);
    if candidate is null then
      perform berth_private.raise_ports_exhausted(current.toolbox_id);
    end if;

    begin
      update public.tool_instances
      set host_port = candidate,
          generation = generation + 1,
          spec_generation = generation + 1
      where id = p_instance_id
      returning * into updated;
      return updated;
    exception when unique_violation then
      -- Another transaction committed this port first. The loop picks the next free one.
      null;
    end;
  end loop;
end;
$$;

comment on function berth_private.reallocate_host_port(uuid, uuid) is
  'Moves a leased instance to another free host port of its toolbox and bumps the spec generation, for when the agent reports port_in_use. Raises BT005 when none is left. Callable by service_role.';
revoke all on function berth_private.reallocate_host_port(uuid, uuid) from public, anon, authenticated;
grant execute on function berth_private.reallocate_host_port(uuid, uuid) to service_role;

-- Observations --------------------------------------------------------------------------------

create type berth_private.observation as (
  container_id text,
  docker_state text,
  exit_code integer,
  oom_killed boolean,
  restart_count integer,
  health text,
  observed_generation bigint,
  started_at timestamptz,
  finished_at timestamptz
);

comment on type berth_private.observation is 'Typed form of one container observation from an agent report.';

create function berth_private.raise_invalid_observation(p_field text, p_expected text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'invalid observation field %: expected %', p_field, p_expected
    using errcode = '22023', table = 'tool_instances', detail = format('field=%s', p_field);
end;
$$;

comment on function berth_private.raise_invalid_observation(text, text) is
  'Raises SQLSTATE 22023 naming a malformed field of an agent observation. Internal to parse_observation.';
revoke all on function berth_private.raise_invalid_observation(text, text) from public, anon, authenticated, service_role;

-- Docker reports "0001-01-01T00:00:00Z" for a time that never happened. Such times become null.
create function berth_private.parse_observation_time(p_value jsonb, p_field text)
returns timestamptz
language plpgsql
set search_path = ''
as $$
declare
  parsed timestamptz;
begin
  if p_value is null or p_value = 'null'::jsonb then
    return null;
  end if;
  if pg_catalog.jsonb_typeof(p_value) <> 'string' then
    perform berth_private.raise_invalid_observation(p_field, 'an ISO 8601 time string');
  end if;
  begin
    parsed := (p_value #>> '{}')::timestamptz;
  exception when invalid_datetime_format or datetime_field_overflow then
    perform berth_private.raise_invalid_observation(p_field, 'an ISO 8601 time string');
  end;
  return case when parsed < '1970-01-01T00:00:00Z'::timestamptz then null else parsed end;
end;
$$;

comment on function berth_private.parse_observation_time(jsonb, text) is
  'Parses a time of an agent observation; Docker''s zero time becomes null. Internal to parse_observation.';
revoke all on function berth_private.parse_observation_time(jsonb, text) from public, anon, authenticated, service_role;

create function berth_private.check_observation_types(p_observation jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  field record;
begin
  if pg_catalog.jsonb_typeof(p_observation) <> 'object' then
    perform berth_private.raise_invalid_observation('observation', 'a JSON object');
  end if;

  for field in
    select expected.name, expected.type
    from (values
      ('container_id', 'string'), ('state', 'string'), ('exit_code', 'number'), ('oom_killed', 'boolean'),
      ('restart_count', 'number'), ('health', 'string'), ('generation', 'number')
    ) as expected(name, type)
    where pg_catalog.jsonb_typeof(p_observation -> expected.name) not in ('null', expected.type)
  loop
    perform berth_private.raise_invalid_observation(field.name, 'a JSON ' || field.type);
  end loop;

  if p_observation ? 'exit_code' and pg_catalog.jsonb_typeof(p_observation -> 'exit_code') = 'number'
     and (p_observation ->> 'exit_code') !~ '^-?[0-9]{1,10}$' then
    perform berth_private.raise_invalid_observation('exit_code', 'an integer');
  end if;
  if p_observation ? 'restart_count' and pg_catalog.jsonb_typeof(p_observation -> 'restart_count') = 'number'
     and (p_observation ->> 'restart_count') !~ '^[0-9]{1,9}$' then
    perform berth_private.raise_invalid_observation('restart_count', 'a non-negative integer');
  end if;
  if p_observation ? 'generation' and pg_catalog.jsonb_typeof(p_observation -> 'generation') = 'number'
     and (p_observation ->> 'generation') !~ '^[0-9]{1,18}$' then
    perform berth_private.raise_invalid_observation('generation', 'a non-negative integer');
  end if;
end;
$$;

comment on function berth_private.check_observation_types(jsonb) is
  'Checks the JSON types of an agent observation. Raises 22023 naming the first bad field. Internal to parse_observation.';
revoke all on function berth_private.check_observation_types(jsonb) from public, anon, authenticated, service_role;

-- Field names follow the agent's observation: container_id, state, exit_code, oom_killed,
-- restart_count, health, generation, started_at, finished_at. A null observation means no
-- container exists, and every field becomes null.
create function berth_private.parse_observation(p_observation jsonb)
returns berth_private.observation
language plpgsql
set search_path = ''
as $$
begin
  if p_observation is null or p_observation = 'null'::jsonb then
    return row(null, null, null, null, null, null, null, null, null)::berth_private.observation;
  end if;

  perform berth_private.check_observation_types(p_observation);
  return row(
    p_observation ->> 'container_id',
    p_observation ->> 'state',
    (p_observation ->> 'exit_code')::integer,
    (p_observation ->> 'oom_killed')::boolean,
    (p_observation ->> 'restart_count')::integer,
    p_observation ->> 'health',
    (p_observation ->> 'generation')::bigint,
    berth_private.parse_observation_time(p_observation -> 'started_at', 'started_at'),
    berth_private.parse_observation_time(p_observation -> 'finished_at', 'finished_at')
  )::berth_private.observation;
end;
$$;

comment on function berth_private.parse_observation(jsonb) is
  'Validates and converts one agent observation (JSON) into berth_private.observation. Raises 22023 naming a malformed field. Internal to the observation functions.';
revoke all on function berth_private.parse_observation(jsonb) from public, anon, authenticated, service_role;

-- Writes an observation only when it differs from the recorded one.
create function berth_private.write_observation(p_instance_id uuid, p_observed berth_private.observation)
returns setof public.tool_instances
language sql
set search_path = ''
as $$
  update public.tool_instances
  set container_id = p_observed.container_id,
      docker_state = p_observed.docker_state,
      exit_code = p_observed.exit_code,
      oom_killed = p_observed.oom_killed,
      restart_count = p_observed.restart_count,
      health = p_observed.health,
      observed_generation = p_observed.observed_generation,
      started_at = p_observed.started_at,
      finished_at = p_observed.finished_at,
      observed_at = pg_catalog.clock_timestamp()
  where id = p_instance_id
    and (container_id, docker_state, exit_code, oom_killed, restart_count, health,
         observed_generation, started_at, finished_at)
        is distinct from
        (p_observed.container_id, p_observed.docker_state, p_observed.exit_code, p_observed.oom_killed,
         p_observed.restart_count, p_observed.health, p_observed.observed_generation,
         p_observed.started_at, p_observed.finished_at)
  returning *
$$;

comment on function berth_private.write_observation(uuid, berth_private.observation) is
  'Writes an observation to an instance only when it differs from the recorded one and returns the changed row. Internal to the observation functions.';
revoke all on function berth_private.write_observation(uuid, berth_private.observation) from public, anon, authenticated, service_role;

create function berth_private.record_observation(p_toolbox_id uuid, p_instance_id uuid, p_observation jsonb)
returns setof public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  observed berth_private.observation := berth_private.parse_observation(p_observation);
  recorded public.tool_instances;
begin
  select * into recorded from public.tool_instances
  where id = p_instance_id and toolbox_id = p_toolbox_id;
  -- An agent reports only for its own toolbox. An instance elsewhere is reported as missing.
  if not found then
    perform berth_private.raise_instance_not_found(p_instance_id);
  end if;
  if recorded.status = 'removed' then
    raise exception 'instance % is removed and cannot change', p_instance_id
      using errcode = 'BT012', detail = format('instance_id=%s', p_instance_id);
  end if;

  return query select * from berth_private.write_observation(p_instance_id, observed);
end;
$$;

comment on function berth_private.record_observation(uuid, uuid, jsonb) is
  'Records what the agent of p_toolbox_id observed for one instance (null: no container) and returns the row only when something changed, so identical reports write nothing. Raises BT006 for an instance not on that toolbox, BT012 for a removed one. Callable by service_role.';
revoke all on function berth_private.record_observation(uuid, uuid, jsonb) from public, anon, authenticated;
grant execute on function berth_private.record_observation(uuid, uuid, jsonb) to service_role;

create function berth_private.record_inventory(p_toolbox_id uuid, p_observations jsonb)
returns setof public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  live record;
begin
  if pg_catalog.jsonb_typeof(p_observations) is distinct from 'array' then
    perform berth_private.raise_invalid_observation('observations', 'a JSON array');
  end if;
  if exists (
    select 1 from pg_catalog.jsonb_array_elements(p_observations) as o
    where pg_catalog.jsonb_typeof(o -> 'instance_id') is distinct from 'string'
       or (o ->> 'instance_id') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
  ) then
    perform berth_private.raise_invalid_observation('instance_id', 'a UUID string in every observation');
  end if;

  -- Every live instance of the toolbox gets the observation reported for it, or none (its
  -- container is absent). Reports for ids without a live row here are orphans: the reconciler
  -- finds them by their labels, so they are ignored.
  for live in
    select i.id, reported.observation
    from public.tool_instances as i
    left join lateral (
      select o as observation
      from pg_catalog.jsonb_array_elements(p_observations) as o
      where (o ->> 'instance_id')::uuid = i.id
      limit 1
    ) as reported on true
    where i.toolbox_id = p_toolbox_id and i.status <> 'removed'
    order by i.id
  loop
    return query select * from berth_private.write_observation(live.id, berth_private.parse_observation(live.observation));
  end loop;
end;
$$;

comment on function berth_private.record_inventory(uuid, jsonb) is
  'Records a whole agent inventory (JSON array of observations with instance_id) for one toolbox: listed instances get their observation, unlisted live ones are recorded as having no container. Returns only the rows that changed. Callable by service_role.';
revoke all on function berth_private.record_inventory(uuid, jsonb) from public, anon, authenticated;
grant execute on function berth_private.record_inventory(uuid, jsonb) to service_role;
