-- Reconciler passes in batches: a run lease so overlapping invocations skip instead of fighting,
-- and set-based functions that claim, record and release a whole batch of toolboxes in one
-- statement each, so the cost of a pass grows with the number of batches, not of instances.

-- Run lease -----------------------------------------------------------------------------------

alter table public.reconcile_runs add column lease_expires_at timestamptz;

comment on column public.reconcile_runs.lease_expires_at is
  'While status is running, the pass holds the run lease until this time (database clock). A pass that stops renewing it is taken over and closed as failed.';

create function berth_private.begin_reconcile_run(
  p_holder text,
  p_ttl_seconds integer default 120,
  p_max_concurrent integer default 1
)
returns table (run_id uuid, started boolean, holder text, lease_expires_at timestamptz)
language plpgsql
security definer
set search_path = ''
as $$
declare
  active_count integer;
  oldest public.reconcile_runs;
  created public.reconcile_runs;
begin
  if p_holder is null or length(p_holder) not between 1 and 200 then
    raise exception 'invalid reconcile run holder: expected 1 to 200 characters'
      using errcode = '22023', table = 'reconcile_runs', column = 'holder', detail = 'column=holder';
  end if;
  if p_ttl_seconds is null or p_ttl_seconds not between 1 and 3600
     or p_max_concurrent is null or p_max_concurrent not between 1 and 100 then
    raise exception 'invalid run lease: ttl % seconds and % concurrent passes, expected 1 to 3600 and 1 to 100',
        coalesce(p_ttl_seconds::text, 'null'), coalesce(p_max_concurrent::text, 'null')
      using errcode = '22023', table = 'reconcile_runs', column = 'lease_expires_at', detail = 'column=lease_expires_at';
  end if;

  -- Serializes concurrent starts, so two passes cannot both see a free slot.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('berth.reconcile_run_lease'));

  select count(*) into active_count from public.reconcile_runs as r
  where r.status = 'running' and r.lease_expires_at > pg_catalog.clock_timestamp();

  if active_count >= p_max_concurrent then
    select * into oldest from public.reconcile_runs as r
    where r.status = 'running' and r.lease_expires_at > pg_catalog.clock_timestamp()
    order by r.started_at
    limit 1;
    return query select oldest.id, false, oldest.holder, oldest.lease_expires_at;
    return;
  end if;

  -- A pass that crashed never finished its row. Its lease has expired, so it is closed here.
  update public.reconcile_runs as r
  set status = 'failed',
      finished_at = pg_catalog.clock_timestamp(),
      errors = r.errors || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
        'code', 'lease_expired', 'message', 'the pass stopped renewing its run lease before it finished'))
  where r.status = 'running' and (r.lease_expires_at is null or r.lease_expires_at <= pg_catalog.clock_timestamp());

  insert into public.reconcile_runs (holder, started_at, lease_expires_at)
  values (p_holder, pg_catalog.clock_timestamp(), pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_ttl_seconds))
  returning * into created;
  return query select created.id, true, created.holder, created.lease_expires_at;
end;
$$;

comment on function berth_private.begin_reconcile_run(text, integer, integer) is
  'Starts a reconciler pass under the run lease: opens a running reconcile_runs row leased for p_ttl_seconds and returns started = true, or, when p_max_concurrent passes already hold unexpired leases, writes nothing and returns started = false with the oldest holder. Runs whose lease expired are closed as failed. Callable by service_role.';
revoke all on function berth_private.begin_reconcile_run(text, integer, integer) from public, anon, authenticated;
grant execute on function berth_private.begin_reconcile_run(text, integer, integer) to service_role;

-- Claim ---------------------------------------------------------------------------------------

create function berth_private.claim_reconcile_batch(
  p_run_id uuid,
  p_holder text,
  p_batch_size integer,
  p_ttl_seconds integer
)
returns setof public.toolboxes
language plpgsql
security definer
set search_path = ''
as $$
declare
  run public.reconcile_runs;
begin
  if p_batch_size is null or p_batch_size not between 1 and 1000
     or p_ttl_seconds is null or p_ttl_seconds not between 1 and 3600 then
    raise exception 'invalid batch size % or ttl % seconds: expected 1 to 1000 and 1 to 3600',
        coalesce(p_batch_size::text, 'null'), coalesce(p_ttl_seconds::text, 'null')
      using errcode = '22023', table = 'toolboxes', column = 'reconcile_lease_expires_at', detail = 'column=reconcile_lease_expires_at';
  end if;

  -- Renewing the run lease doubles as the check that this pass still owns its run. A pass
  -- that lost it (taken over after expiry, or finished) claims nothing and stops.
  update public.reconcile_runs as r
  set lease_expires_at = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_ttl_seconds)
  where r.id = p_run_id and r.holder = p_holder and r.status = 'running'
    and r.lease_expires_at > pg_catalog.clock_timestamp()
  returning * into run;
  if run.id is null then
    return;
  end if;

  -- Toolboxes reconciled since this pass started are done for this pass. SKIP LOCKED lets
  -- concurrent passes take disjoint batches instead of waiting on each other.
  return query
  with batch as (
    select t.id
    from public.toolboxes as t
    where t.status <> 'decommissioned'
      and (t.reconcile_lease_expires_at is null or t.reconcile_lease_expires_at <= pg_catalog.clock_timestamp())
      and (t.last_reconciled_at is null or t.last_reconciled_at < run.started_at)
    order by t.last_reconciled_at nulls first, t.id
    limit p_batch_size
    for update skip locked
  )
  update public.toolboxes as t
  set reconcile_lease_holder = p_holder,
      reconcile_lease_expires_at = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_ttl_seconds)
  from batch
  where t.id = batch.id
  returning t.*;
end;
$$;

comment on function berth_private.claim_reconcile_batch(uuid, text, integer, integer) is
  'Renews the run lease of p_run_id and leases up to p_batch_size toolboxes that no pass holds and that were not reconciled since the run started, least recently reconciled first. Returns no rows when the batch is empty or the run lease is lost. Callable by service_role.';
revoke all on function berth_private.claim_reconcile_batch(uuid, text, integer, integer) from public, anon, authenticated;
grant execute on function berth_private.claim_reconcile_batch(uuid, text, integer, integer) to service_role;

-- Orphan sightings ----------------------------------------------------------------------------

create table berth_private.orphan_containers (
  toolbox_id uuid not null references public.toolboxes (id) on delete cascade,
  container_id text not null,
  instance_id uuid not null,
  first_seen_at timestamptz not null default now(),
  primary key (toolbox_id, container_id)
);

comment on table berth_private.orphan_containers is
  'Labelled containers that an agent reported without a live instance row on its toolbox, with when the reconciler first saw each one. A container is removed only after a grace period from first_seen_at. Written by record_reconcile_batch only.';

alter table berth_private.orphan_containers enable row level security;

-- Record --------------------------------------------------------------------------------------

-- Stable, like the text to timestamptz cast it uses, so the planner can inline it. Declared
-- immutable it would run as a separate function call for every observation.
create function berth_private.parse_reconcile_time(p_value text)
returns timestamptz
language sql
stable
parallel safe
set search_path = ''
as $$
  -- Docker reports 0001-01-01T00:00:00Z for a time that never happened.
  select case when p_value::timestamptz < '1970-01-01T00:00:00Z'::timestamptz then null else p_value::timestamptz end
$$;

comment on function berth_private.parse_reconcile_time(text) is
  'Parses an observation time of an inventory; Docker''s zero time becomes null. Internal to record_reconcile_batch.';
revoke all on function berth_private.parse_reconcile_time(text) from public, anon, authenticated, service_role;

create function berth_private.record_reconcile_batch(p_holder text, p_reports jsonb)
returns json
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- One clock reading for the whole batch, so a sighting recorded now is zero seconds old to
  -- the plan, never a few microseconds in the future.
  recorded_at timestamptz := pg_catalog.clock_timestamp();
  result json;
begin
  if pg_catalog.jsonb_typeof(p_reports) is distinct from 'array' then
    perform berth_private.raise_invalid_observation('reports', 'a JSON array');
  end if;

  -- One statement for the whole batch. Data-modifying CTEs all read the snapshot taken before
  -- the statement, so `live` still holds the recorded observation that this one replaces.
  with report as (
    select (r ->> 'toolbox_id')::uuid as toolbox_id, r -> 'instances' as instances
    from pg_catalog.jsonb_array_elements(p_reports) as r
  ),
  held as (
    select t.id
    from public.toolboxes as t
    join report on report.toolbox_id = t.id
    where t.reconcile_lease_holder = p_holder
      and t.reconcile_lease_expires_at > recorded_at
  ),
  reported as (
    -- An engine can hold two containers with one instance label. The running one counts.
    select distinct on (report.toolbox_id, o.instance_id)
      report.toolbox_id, o.instance_id, o.container_id, o.state, o.exit_code, o.oom_killed,
      o.restart_count, o.health, o.generation,
      berth_private.parse_reconcile_time(o.started_at) as started_at,
      berth_private.parse_reconcile_time(o.finished_at) as finished_at
    from report
    join held on held.id = report.toolbox_id
    cross join lateral pg_catalog.jsonb_to_recordset(report.instances) as o(
      instance_id uuid, container_id text, state text, exit_code integer, oom_killed boolean,
      restart_count integer, health text, generation bigint, started_at text, finished_at text
    )
    order by report.toolbox_id, o.instance_id, (o.state = 'running') desc, o.container_id
  ),
  live as (
    select i.id, i.toolbox_id, i.status, i.status_reason_code, i.desired_state, i.generation,
           i.spec_generation, i.version, i.status_changed_at, i.restart_attempts, i.next_attempt_at, i.lease_holder, i.lease_expires_at,
           i.container_id, i.docker_state, i.exit_code, i.oom_killed, i.restart_count, i.health,
           i.observed_generation, i.started_at, i.finished_at
    from public.tool_instances as i
    join held on held.id = i.toolbox_id
    where i.status <> 'removed'
  ),
  observed as (
    select live.id, r.container_id, r.state, r.exit_code, r.oom_killed, r.restart_count, r.health,
           r.generation, r.started_at, r.finished_at
    from live
    left join reported as r on r.instance_id = live.id and r.toolbox_id = live.toolbox_id
    where (live.container_id, live.docker_state, live.exit_code, live.oom_killed, live.restart_count,
           live.health, live.observed_generation, live.started_at, live.finished_at)
          is distinct from
          (r.container_id, r.state, r.exit_code, r.oom_killed, r.restart_count,
           r.health, r.generation, r.started_at, r.finished_at)
  ),
  written as (
    update public.tool_instances as t
    set container_id = o.container_id,
        docker_state = o.state,
        exit_code = o.exit_code,
        oom_killed = o.oom_killed,
        restart_count = o.restart_count,
        health = o.health,
        observed_generation = o.generation,
        started_at = o.started_at,
        finished_at = o.finished_at,
        observed_at = recorded_at
    from observed as o
    where t.id = o.id
    returning t.id, t.version
  ),
  checked as (
    -- Quiet rows are in sync by every rule of the reconciler's plan: unleased, the container
    -- recorded before is the one reported, at the spec generation, with no engine restart
    -- since, and status equal to the desired running or stopped state. They are only counted,
    -- so a pass without drift sends back almost nothing. Every other row goes to the plan.
    select live.*,
      (live.lease_expires_at is null or live.lease_expires_at <= recorded_at)
      and r.generation >= live.spec_generation
      and live.container_id = r.container_id
      and live.restart_count is not distinct from r.restart_count
      and (
        (live.desired_state = 'running' and live.status = 'running' and r.state = 'running')
        or (live.desired_state = 'stopped' and live.status = 'stopped' and r.state in ('created', 'exited', 'dead', 'stopped'))
      ) as quiet
    from live
    left join reported as r on r.instance_id = live.id and r.toolbox_id = live.toolbox_id
  ),
  orphan as (
    -- An anti-join the planner can hash. NOT EXISTS over the CTE would rescan it per report.
    select r.toolbox_id, r.instance_id, r.container_id, r.state
    from reported as r
    left join live on live.id = r.instance_id and live.toolbox_id = r.toolbox_id
    where live.id is null
  ),
  sighted as (
    insert into berth_private.orphan_containers (toolbox_id, container_id, instance_id, first_seen_at)
    select orphan.toolbox_id, orphan.container_id, orphan.instance_id, recorded_at
    from orphan
    on conflict (toolbox_id, container_id) do nothing
    returning toolbox_id, container_id, first_seen_at
  ),
  forgotten as (
    -- A sighting ends when its container is gone or a live row now claims it.
    delete from berth_private.orphan_containers as s
    using held
    where s.toolbox_id = held.id
      and not exists (select 1 from orphan where orphan.toolbox_id = s.toolbox_id and orphan.container_id = s.container_id)
    returning s.container_id
  )
  -- json, not jsonb: the result only goes to the client, and building jsonb for every instance
  -- of the batch would cost the server more than the rest of the statement.
  select pg_catalog.json_build_object(
    'now', recorded_at,
    'held', (select coalesce(pg_catalog.json_agg(held.id), '[]'::json) from held),
    'written', (select count(*) from written),
    'quiet', (select count(*) from checked where checked.quiet),
    'instances', (
      select coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
        'id', live.id,
        'toolbox_id', live.toolbox_id,
        'status', live.status,
        'status_reason_code', live.status_reason_code,
        'desired_state', live.desired_state,
        'generation', live.generation,
        'spec_generation', live.spec_generation,
        'version', coalesce(written.version, live.version),
        'status_changed_at', live.status_changed_at,
        'restart_attempts', live.restart_attempts,
        'next_attempt_at', live.next_attempt_at,
        'lease_holder', case when live.lease_expires_at > recorded_at then live.lease_holder end,
        'lease_expires_at', case when live.lease_expires_at > recorded_at then live.lease_expires_at end,
        'recorded_container_id', live.container_id,
        'recorded_restart_count', live.restart_count,
        'recorded_exit_code', live.exit_code
      )), '[]'::json)
      from checked as live
      left join written on written.id = live.id
      where live.quiet is not true
    ),
    'orphans', (
      select coalesce(pg_catalog.json_agg(pg_catalog.json_build_object(
        'toolbox_id', orphan.toolbox_id,
        'instance_id', orphan.instance_id,
        'container_id', orphan.container_id,
        'state', orphan.state,
        'first_seen_at', coalesce(s.first_seen_at, sighted.first_seen_at)
      )), '[]'::json)
      from orphan
      left join berth_private.orphan_containers as s
        on s.toolbox_id = orphan.toolbox_id and s.container_id = orphan.container_id
      left join sighted
        on sighted.toolbox_id = orphan.toolbox_id and sighted.container_id = orphan.container_id
    ),
    'forgotten', (select count(*) from forgotten)
  ) into result;

  return result;
end;
$$;

comment on function berth_private.record_reconcile_batch(text, jsonb) is
  'Records the inventories of a batch of toolboxes that p_holder has leased (JSON array of {toolbox_id, instances}) in one statement: writes only the instance rows whose observation changed, tracks labelled containers without a live row as orphan sightings, and returns the database time, the number of live instances that are quiet (in sync by every rule of the plan), the intent and lease of every other live instance with its previously recorded container id, restart count and exit code, and the orphans with when each was first seen. Toolboxes p_holder does not hold are ignored. Callable by service_role.';
revoke all on function berth_private.record_reconcile_batch(text, jsonb) from public, anon, authenticated;
grant execute on function berth_private.record_reconcile_batch(text, jsonb) to service_role;

-- Status updates that need no agent call ------------------------------------------------------

create function berth_private.append_reconcile_event(
  p_instance public.tool_instances,
  p_reason_code text,
  p_message text,
  p_details jsonb
)
returns void
language sql
set search_path = ''
as $$
  insert into public.instance_events
    (instance_id, owner_id, toolbox_id, from_status, to_status, actor, reason_code, message, details)
  values (
    p_instance.id, p_instance.owner_id, p_instance.toolbox_id, p_instance.status, p_instance.status,
    'reconciler', p_reason_code, p_message,
    pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
      'generation', p_instance.generation,
      'observed_generation', p_instance.observed_generation,
      'container_id', p_instance.container_id,
      'docker_state', p_instance.docker_state
    )) || coalesce(p_details, '{}'::jsonb)
  )
$$;

comment on function berth_private.append_reconcile_event(public.tool_instances, text, text, jsonb) is
  'Appends a reconciler event whose from and to status are equal, for a repair that left the status as it was (an adopted container, a container recreated while running). Internal to the reconciler functions.';
revoke all on function berth_private.append_reconcile_event(public.tool_instances, text, text, jsonb) from public, anon, authenticated, service_role;

create function berth_private.apply_reconcile_statuses(p_holder text, p_updates jsonb)
returns table (instance_id uuid, applied boolean, version bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
  wanted record;
  current public.tool_instances;
  updated public.tool_instances;
begin
  if pg_catalog.jsonb_typeof(p_updates) is distinct from 'array' then
    raise exception 'invalid status updates: expected a JSON array'
      using errcode = '22023', table = 'tool_instances', column = 'status', detail = 'column=status';
  end if;

  for wanted in
    select * from pg_catalog.jsonb_to_recordset(p_updates) as u(
      instance_id uuid, expected_version bigint, status text, reason_code text, message text, details jsonb
    )
    order by u.instance_id
  loop
    perform berth_private.check_status_arguments(wanted.status, wanted.reason_code);
    select * into current from public.tool_instances as i where i.id = wanted.instance_id for update;

    -- A row that changed since the batch was read, or that another holder leases, is left
    -- for the next pass, which sees its new state. So is a pair the transition table forbids.
    if current.id is null
       or current.version <> wanted.expected_version
       or current.status = 'removed'
       or (current.lease_nonce is not null and current.lease_expires_at > pg_catalog.clock_timestamp()
           and current.lease_holder is distinct from p_holder)
       or (current.status <> wanted.status::public.instance_status and not exists (
             select 1 from berth_private.instance_status_transitions as t
             where t.from_status = current.status and t.to_status = wanted.status::public.instance_status)) then
      instance_id := wanted.instance_id;
      applied := false;
      version := current.version;
      return next;
      continue;
    end if;

    if current.status = wanted.status::public.instance_status then
      perform berth_private.append_reconcile_event(current, wanted.reason_code, wanted.message, wanted.details);
      update public.tool_instances as i
      set status_reason_code = wanted.reason_code, status_reason = wanted.message
      where i.id = wanted.instance_id
      returning * into updated;
      updated := coalesce(updated, current);
    else
      updated := berth_private.write_status(wanted.instance_id, wanted.status, wanted.reason_code, wanted.message, 'reconciler', wanted.details);
    end if;

    instance_id := wanted.instance_id;
    applied := true;
    version := updated.version;
    return next;
  end loop;
end;
$$;

comment on function berth_private.apply_reconcile_statuses(text, jsonb) is
  'Applies status changes the reconciler derived from observations alone (JSON array of {instance_id, expected_version, status, reason_code, message, details}) in one statement, as actor reconciler with one event each. A row at another version, leased by another holder, removed, or for which the transition is not allowed is skipped and returned with applied = false. Callable by service_role.';
revoke all on function berth_private.apply_reconcile_statuses(text, jsonb) from public, anon, authenticated;
grant execute on function berth_private.apply_reconcile_statuses(text, jsonb) to service_role;

create function berth_private.record_reconcile_event(p_instance_id uuid, p_reason_code text, p_message text, p_details jsonb default null)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
declare
  current public.tool_instances := berth_private.lock_instance(p_instance_id);
begin
  perform berth_private.check_reason_code(p_reason_code);
  if p_details is not null and pg_catalog.jsonb_typeof(p_details) <> 'object' then
    raise exception 'invalid event details: expected a JSON object'
      using errcode = '22023', table = 'instance_events', column = 'details', detail = 'column=details';
  end if;
  perform berth_private.append_reconcile_event(current, p_reason_code, p_message, p_details);
  return current;
end;
$$;

comment on function berth_private.record_reconcile_event(uuid, text, text, jsonb) is
  'Appends a reconciler event for an instance without changing its status, for a repair that ended in the status it started from. Raises BT006 for an unknown instance. Callable by service_role.';
revoke all on function berth_private.record_reconcile_event(uuid, text, text, jsonb) from public, anon, authenticated;
grant execute on function berth_private.record_reconcile_event(uuid, text, text, jsonb) to service_role;

-- Release -------------------------------------------------------------------------------------

create function berth_private.finish_reconcile_batch(p_holder text, p_results jsonb, p_failure_threshold integer default 3)
returns table (toolbox_id uuid, status public.toolbox_status, consecutive_failures integer, instances_marked_unknown integer)
language plpgsql
security definer
set search_path = ''
as $$
declare
  box record;
  marked integer;
begin
  if p_failure_threshold is null or p_failure_threshold < 1 then
    raise exception 'invalid failure threshold %: expected at least 1', coalesce(p_failure_threshold::text, 'null')
      using errcode = '22023', table = 'toolboxes', column = 'consecutive_failures', detail = 'column=consecutive_failures';
  end if;
  if pg_catalog.jsonb_typeof(p_results) is distinct from 'array' then
    raise exception 'invalid batch results: expected a JSON array'
      using errcode = '22023', table = 'toolboxes', column = 'reconcile_lease_holder', detail = 'column=reconcile_lease_holder';
  end if;

  -- One update releases the whole batch and records each contact: a reachable agent counts as
  -- a heartbeat, an unreachable one as a failure, as record_toolbox_heartbeat and
  -- record_toolbox_failure do one toolbox at a time.
  for box in
    with result as (
      select * from pg_catalog.jsonb_to_recordset(p_results) as r(toolbox_id uuid, reachable boolean, agent_version text, error text)
    )
    update public.toolboxes as t
    set last_reconciled_at = pg_catalog.clock_timestamp(),
        reconcile_lease_holder = null,
        reconcile_lease_expires_at = null,
        last_heartbeat_at = case when result.reachable then pg_catalog.clock_timestamp() else t.last_heartbeat_at end,
        consecutive_failures = case when result.reachable then 0 else t.consecutive_failures + 1 end,
        last_failure = case when result.reachable then null else left(result.error, 1000) end,
        agent_version = case when result.reachable then coalesce(result.agent_version, t.agent_version) else t.agent_version end,
        status = case
          when result.reachable and t.status in ('provisioning', 'unreachable') then 'active'::public.toolbox_status
          when not result.reachable and t.consecutive_failures + 1 >= p_failure_threshold and t.status in ('provisioning', 'active')
            then 'unreachable'::public.toolbox_status
          else t.status
        end
    from result
    where t.id = result.toolbox_id and t.reconcile_lease_holder = p_holder
    returning t.id, t.status, t.consecutive_failures, result.error
  loop
    marked := 0;
    if box.consecutive_failures >= p_failure_threshold then
      marked := berth_private.mark_unreachable_instances_unknown(
        box.id, p_holder,
        format('Agent unreachable after %s failed contacts: %s', box.consecutive_failures, left(box.error, 500)));
    end if;
    toolbox_id := box.id;
    status := box.status;
    consecutive_failures := box.consecutive_failures;
    instances_marked_unknown := marked;
    return next;
  end loop;
end;
$$;

comment on function berth_private.finish_reconcile_batch(text, jsonb, integer) is
  'Releases the toolboxes of a batch that p_holder leased (JSON array of {toolbox_id, reachable, agent_version, error}) and records each contact: reachable resets the failure counter and makes the toolbox active; unreachable counts a failure, and at p_failure_threshold makes it unreachable and its unleased instances unknown (HostUnreachable), never stopped. Callable by service_role.';
revoke all on function berth_private.finish_reconcile_batch(text, jsonb, integer) from public, anon, authenticated;
grant execute on function berth_private.finish_reconcile_batch(text, jsonb, integer) to service_role;

create function berth_private.mark_unreachable_instances_unknown(p_toolbox_id uuid, p_holder text, p_message text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  marked integer;
begin
  perform berth_private.set_event_context('reconciler');
  -- pending has no container yet and removed is final, so neither becomes unknown. An instance
  -- that another holder leases is being driven and gets marked by a later pass if still needed.
  update public.tool_instances as i
  set status = 'unknown',
      status_reason_code = 'HostUnreachable',
      status_reason = p_message
  where i.toolbox_id = p_toolbox_id
    and i.status not in ('pending', 'unknown', 'removed')
    and (i.lease_nonce is null or i.lease_expires_at <= pg_catalog.clock_timestamp() or i.lease_holder = p_holder);
  get diagnostics marked = row_count;
  perform berth_private.clear_event_context();
  return marked;
end;
$$;

comment on function berth_private.mark_unreachable_instances_unknown(uuid, text, text) is
  'Sets the unleased instances of an unreachable toolbox that may have a container to unknown with reason HostUnreachable. Internal to finish_reconcile_batch.';
revoke all on function berth_private.mark_unreachable_instances_unknown(uuid, text, text) from public, anon, authenticated, service_role;
