-- Keeps a reconciler pass from acting on an inventory older than the row it would change. A
-- pass claims a batch of toolboxes, then fetches their inventories, then records them. A row
-- that changed in between (a user's stop that finished meanwhile) may already reflect agent
-- work that the inventory predates, so the pass neither records the observation on it nor
-- plans a repair for it, and leaves it for the next pass. A repair claims its lease only at
-- the row version its plan was made from. Also adds the reason code ContainerNotStarted.

-- Reason codes --------------------------------------------------------------------------------

insert into berth_private.reason_codes (code, description) values
  ('ContainerNotStarted', 'Desired running but the container was created and never started; started.');

-- Claim times ---------------------------------------------------------------------------------

create table berth_private.reconcile_claims (
  toolbox_id uuid primary key references public.toolboxes (id) on delete cascade,
  holder text not null,
  claimed_at timestamptz not null
);

comment on table berth_private.reconcile_claims is
  'When the reconciler pass p_holder last claimed each toolbox, by the database clock. The claim comes before the inventory fetch, so an instance row updated at or after claimed_at may be newer than the inventory. Written by claim_reconcile_batch, read by record_reconcile_batch.';

alter table berth_private.reconcile_claims enable row level security;
revoke all on table berth_private.reconcile_claims from public, anon, authenticated, service_role;

create or replace function berth_private.claim_reconcile_batch(
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
  -- Read before the claim returns, so before any inventory of the batch is fetched.
  claim_time timestamptz := pg_catalog.clock_timestamp();
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
  ),
  leased as (
    update public.toolboxes as t
    set reconcile_lease_holder = p_holder,
        reconcile_lease_expires_at = pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_ttl_seconds)
    from batch
    where t.id = batch.id
    returning t.*
  ),
  stamped as (
    insert into berth_private.reconcile_claims (toolbox_id, holder, claimed_at)
    select leased.id, p_holder, claim_time from leased
    on conflict (toolbox_id) do update set holder = excluded.holder, claimed_at = excluded.claimed_at
  )
  select leased.* from leased;
end;
$$;

comment on function berth_private.claim_reconcile_batch(uuid, text, integer, integer) is
  'Renews the run lease of p_run_id and leases up to p_batch_size toolboxes that no pass holds and that were not reconciled since the run started, least recently reconciled first, recording the claim time in berth_private.reconcile_claims. Returns no rows when the batch is empty or the run lease is lost. Callable by service_role.';

-- Record --------------------------------------------------------------------------------------

create or replace function berth_private.record_reconcile_batch(p_holder text, p_reports jsonb)
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
    -- A toolbox counts only with the claim time of this holder, which bounds the inventory's age.
    select t.id, c.claimed_at
    from public.toolboxes as t
    join report on report.toolbox_id = t.id
    join berth_private.reconcile_claims as c on c.toolbox_id = t.id and c.holder = p_holder
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
    -- `changed`: the row was written at or after the claim, so possibly after the inventory was
    -- read. Its observation may predate what the row records, so the row waits for the next pass.
    select i.id, i.toolbox_id, i.status, i.status_reason_code, i.desired_state, i.generation,
           i.spec_generation, i.version, i.status_changed_at, i.restart_attempts, i.next_attempt_at, i.lease_holder, i.lease_expires_at,
           i.container_id, i.docker_state, i.exit_code, i.oom_killed, i.restart_count, i.health,
           i.observed_generation, i.started_at, i.finished_at,
           i.updated_at >= held.claimed_at as changed
    from public.tool_instances as i
    join held on held.id = i.toolbox_id
    where i.status <> 'removed'
  ),
  observed as (
    select live.id, r.container_id, r.state, r.exit_code, r.oom_killed, r.restart_count, r.health,
           r.generation, r.started_at, r.finished_at
    from live
    left join reported as r on r.instance_id = live.id and r.toolbox_id = live.toolbox_id
    where not live.changed
      and (live.container_id, live.docker_state, live.exit_code, live.oom_killed, live.restart_count,
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
    -- so a pass without drift sends back almost nothing. Every other unchanged row goes to the plan.
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
    where not live.changed
  ),
  orphan as (
    -- An anti-join the planner can hash. NOT EXISTS over the CTE would rescan it per report.
    -- A changed row still claims its container, so it is never an orphan.
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
    'deferred', (select count(*) from live where live.changed),
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
  'Records the inventories of a batch of toolboxes that p_holder has leased (JSON array of {toolbox_id, instances}) in one statement: writes only the instance rows whose observation changed, tracks labelled containers without a live row as orphan sightings, and returns the database time, the number of live instances that are quiet (in sync by every rule of the plan), the number deferred because they were written at or after the toolbox was claimed (their observation may be stale, so nothing is recorded on them), the intent and lease of every other live instance with its previously recorded container id, restart count and exit code, and the orphans with when each was first seen. Toolboxes p_holder does not hold are ignored. Callable by service_role.';

-- Lease at a version --------------------------------------------------------------------------

create function berth_private.claim_instance_lease_at_version(
  p_instance_id uuid,
  p_expected_version bigint,
  p_holder text,
  p_ttl_seconds integer
)
returns public.tool_instances
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- The row stays locked until the end of the transaction, so the claim below sees the same row.
  perform berth_private.lock_instance_at_version(p_instance_id, p_expected_version);
  return berth_private.claim_instance_lease(p_instance_id, p_holder, p_ttl_seconds);
end;
$$;

comment on function berth_private.claim_instance_lease_at_version(uuid, bigint, text, integer) is
  'Claims the lease as claim_instance_lease does, but only while the instance is at p_expected_version (BT002 otherwise, nothing written), for a repair planned from that version. Callable by service_role.';
revoke all on function berth_private.claim_instance_lease_at_version(uuid, bigint, text, integer) from public, anon, authenticated;
grant execute on function berth_private.claim_instance_lease_at_version(uuid, bigint, text, integer) to service_role;

-- Host port moves -----------------------------------------------------------------------------

-- Searching upwards from the current port, not from the start of the range, keeps successive
-- moves of one instance from going back to a port it just left because that port was taken.
create function berth_private.next_free_host_port_after(p_toolbox_id uuid, p_after_port integer)
returns integer
language sql
stable
set search_path = ''
as $$
  select candidate.port
  from public.toolboxes as t
  cross join lateral pg_catalog.generate_series(t.port_range_start, t.port_range_end) as candidate(port)
  where t.id = p_toolbox_id
    and candidate.port <> t.agent_port
    and candidate.port <> p_after_port
    and not exists (
      select 1
      from public.tool_instances as i
      where i.toolbox_id = t.id
        and i.host_port = candidate.port
        and i.status <> 'removed'
    )
  order by candidate.port < p_after_port, candidate.port
  limit 1
$$;

comment on function berth_private.next_free_host_port_after(uuid, integer) is
  'Returns the first host port of the toolbox''s range above p_after_port, wrapping around to the start of the range, that is not the agent port and not held by a live instance, or null when none is left. A candidate only: the unique index decides. Internal to reallocate_host_port.';
revoke all on function berth_private.next_free_host_port_after(uuid, integer) from public, anon, authenticated, service_role;

create or replace function berth_private.reallocate_host_port(p_instance_id uuid, p_lease_nonce uuid)
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
    candidate := berth_private.next_free_host_port_after(current.toolbox_id, current.host_port);
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
  'Moves a leased instance to the next free host port above its current one (wrapping around the toolbox''s range) and bumps the spec generation, for when the agent reports port_in_use. Successive moves therefore never return to a port just left. Raises BT005 when none is left. Callable by service_role.';
