-- Instance lifecycle: the allowed status transitions, the reason codes, and the triggers that
-- guard transitions, stamp versions and append one event per status change.

-- Transitions ---------------------------------------------------------------------------------

create table berth_private.instance_status_transitions (
  from_status public.instance_status not null,
  to_status public.instance_status not null,
  primary key (from_status, to_status),
  constraint instance_status_transitions_not_self check (from_status <> to_status)
);

comment on table berth_private.instance_status_transitions is
  'Every allowed change of tool_instances.status. Any other pair is rejected by trigger with SQLSTATE BT001. packages/shared keeps the same list. A test proves they are equal.';

-- Keeping the status is not a transition, so the table has no (s, s) rows. `removed` is final,
-- nothing returns to `pending`, and only states that may have a container become `unknown`.
insert into berth_private.instance_status_transitions (from_status, to_status) values
  ('pending', 'deploying'), ('pending', 'failed'), ('pending', 'removing'), ('pending', 'removed'),

  ('deploying', 'starting'), ('deploying', 'running'), ('deploying', 'stopped'),
  ('deploying', 'failed'), ('deploying', 'unknown'), ('deploying', 'removing'),

  ('starting', 'running'), ('starting', 'stopping'), ('starting', 'stopped'), ('starting', 'failed'),
  ('starting', 'deploying'), ('starting', 'unknown'), ('starting', 'removing'),

  ('running', 'stopping'), ('running', 'stopped'), ('running', 'restarting'), ('running', 'starting'),
  ('running', 'deploying'), ('running', 'failed'), ('running', 'unknown'), ('running', 'removing'),

  ('stopping', 'stopped'), ('stopping', 'running'), ('stopping', 'failed'), ('stopping', 'unknown'),
  ('stopping', 'removing'),

  ('stopped', 'starting'), ('stopped', 'running'), ('stopped', 'stopping'), ('stopped', 'deploying'),
  ('stopped', 'unknown'), ('stopped', 'removing'),

  ('restarting', 'running'), ('restarting', 'stopping'), ('restarting', 'failed'),
  ('restarting', 'deploying'), ('restarting', 'unknown'), ('restarting', 'removing'),

  ('failed', 'deploying'), ('failed', 'starting'), ('failed', 'restarting'), ('failed', 'running'),
  ('failed', 'stopped'), ('failed', 'unknown'), ('failed', 'removing'),

  ('unknown', 'deploying'), ('unknown', 'starting'), ('unknown', 'running'), ('unknown', 'stopping'),
  ('unknown', 'stopped'), ('unknown', 'restarting'), ('unknown', 'failed'), ('unknown', 'removing'),
  ('unknown', 'removed'),

  ('removing', 'removed'), ('removing', 'unknown');

-- Reason codes --------------------------------------------------------------------------------

create table berth_private.reason_codes (
  code text primary key,
  description text not null,
  constraint reason_codes_code_format check (code ~ '^[A-Z][A-Za-z]{1,63}$')
);

comment on table berth_private.reason_codes is
  'Closed set of machine-readable reason codes for status changes and events. packages/shared keeps the same list. A test proves they are equal.';

insert into berth_private.reason_codes (code, description) values
  ('Created', 'The owner created the instance.'),
  ('DeployRequested', 'The owner asked to deploy the instance again.'),
  ('StartRequested', 'The owner asked to start the instance.'),
  ('StopRequested', 'The owner asked to stop the instance.'),
  ('RestartRequested', 'The owner asked to restart the instance.'),
  ('RemoveRequested', 'The owner asked to remove the instance.'),
  ('ContainerRunning', 'The agent reported the container running.'),
  ('ContainerStopped', 'The agent reported the container stopped as intended.'),
  ('ContainerRemoved', 'The agent removed the container or reported it absent.'),
  ('ImageNotFound', 'The agent could not find or pull the image.'),
  ('PortInUse', 'The host port was taken by something else on the host.'),
  ('AgentError', 'The agent rejected the request or failed.'),
  ('HostRecovered', 'The agent answered again after being unreachable.'),
  ('ContainerMissing', 'Desired running but the container does not exist; recreated from the spec.'),
  ('ContainerExited', 'Desired running but the container exited; started again.'),
  ('CrashLoop', 'The container kept exiting after restarts; marked failed and backed off.'),
  ('UnexpectedlyRunning', 'Desired stopped but the container is running; stopped.'),
  ('SpecChanged', 'The spec generation is newer than the container; recreated.'),
  ('Orphan', 'A labelled container has no live row; removed after a grace period.'),
  ('StuckTransition', 'A transitional status outlived its deadline; driven again from the observation.'),
  ('Adopted', 'The observed container id differs from the recorded one; adopted.'),
  ('HostUnreachable', 'The agent did not answer; the instance state is unknown.');

alter table public.tool_instances
  add constraint tool_instances_status_reason_code_fkey
  foreign key (status_reason_code) references berth_private.reason_codes (code);

alter table public.instance_events
  add constraint instance_events_reason_code_fkey
  foreign key (reason_code) references berth_private.reason_codes (code);

-- Guard: only listed transitions ----------------------------------------------------------------

create function berth_private.guard_status_transition()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status is distinct from old.status and not exists (
    select 1
    from berth_private.instance_status_transitions as t
    where t.from_status = old.status and t.to_status = new.status
  ) then
    raise exception 'invalid status transition from % to % for instance %', old.status, new.status, old.id
      using errcode = 'BT001',
            detail = format('from_status=%s to_status=%s', old.status, new.status),
            hint = 'Allowed transitions are listed in berth_private.instance_status_transitions.',
            table = 'tool_instances',
            column = 'status';
  end if;
  return new;
end;
$$;

comment on function berth_private.guard_status_transition() is
  'Trigger: rejects a status change that is not in instance_status_transitions with SQLSTATE BT001. Fires on tool_instances only.';
revoke all on function berth_private.guard_status_transition() from public, anon, authenticated, service_role;

-- BEFORE UPDATE triggers fire in name order: the guard first, then the no-op filter, then the
-- stamps, so an update that changes nothing is dropped before it could bump the version.
create trigger guard_status_transition
  before update of status on public.tool_instances
  for each row execute function berth_private.guard_status_transition();

-- Drop updates that change nothing, so identical agent reports cost no row version.
create trigger skip_unchanged_update
  before update on public.tool_instances
  for each row execute function pg_catalog.suppress_redundant_updates_trigger();

-- Stamps --------------------------------------------------------------------------------------

create function berth_private.stamp_status_changed_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.status_changed_at := pg_catalog.now();
  return new;
end;
$$;

comment on function berth_private.stamp_status_changed_at() is
  'Trigger: records when the status of an instance last changed. Fires on tool_instances only.';
revoke all on function berth_private.stamp_status_changed_at() from public, anon, authenticated, service_role;

create trigger stamp_status_changed_at
  before update of status on public.tool_instances
  for each row
  when (new.status is distinct from old.status)
  execute function berth_private.stamp_status_changed_at();

create function berth_private.stamp_version()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.version := old.version + 1;
  new.updated_at := pg_catalog.now();
  return new;
end;
$$;

comment on function berth_private.stamp_version() is
  'Trigger: bumps version and updated_at on every update that reaches it, so writers can detect lost updates. Fires on tool_instances only.';
revoke all on function berth_private.stamp_version() from public, anon, authenticated, service_role;

create trigger stamp_version
  before update on public.tool_instances
  for each row execute function berth_private.stamp_version();

create function berth_private.stamp_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := pg_catalog.now();
  return new;
end;
$$;

comment on function berth_private.stamp_updated_at() is
  'Trigger: sets updated_at on every update. Fires on toolboxes only.';
revoke all on function berth_private.stamp_updated_at() from public, anon, authenticated, service_role;

create trigger skip_unchanged_update
  before update on public.toolboxes
  for each row execute function pg_catalog.suppress_redundant_updates_trigger();

create trigger stamp_updated_at
  before update on public.toolboxes
  for each row execute function berth_private.stamp_updated_at();

-- Events --------------------------------------------------------------------------------------

-- Returns the actor that the current write function declared with set_config('berth.actor',
-- ..., true), or `system` for writes made outside those functions.
create function berth_private.current_actor()
returns public.event_actor
language plpgsql
stable
set search_path = ''
as $$
declare
  declared text := nullif(pg_catalog.current_setting('berth.actor', true), '');
begin
  if declared is null then
    return 'system';
  end if;
  return declared::public.event_actor;
end;
$$;

comment on function berth_private.current_actor() is
  'Returns the event actor declared by the running write function in berth.actor, or system. Used by the event trigger. No role needs to call it.';
revoke all on function berth_private.current_actor() from public, anon, authenticated, service_role;

create function berth_private.append_status_event()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  extra jsonb := coalesce(nullif(pg_catalog.current_setting('berth.event_details', true), '')::jsonb, '{}'::jsonb);
begin
  if tg_op = 'UPDATE' and new.status is not distinct from old.status then
    return null;
  end if;

  insert into public.instance_events
    (instance_id, owner_id, toolbox_id, from_status, to_status, actor, reason_code, message, details)
  values (
    new.id,
    new.owner_id,
    new.toolbox_id,
    case when tg_op = 'UPDATE' then old.status end,
    new.status,
    berth_private.current_actor(),
    new.status_reason_code,
    new.status_reason,
    pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
      'generation', new.generation,
      'observed_generation', new.observed_generation,
      'container_id', new.container_id,
      'docker_state', new.docker_state,
      'exit_code', new.exit_code,
      'oom_killed', new.oom_killed,
      'restart_count', new.restart_count
    )) || extra
  );
  return null;
end;
$$;

comment on function berth_private.append_status_event() is
  'Trigger: appends one instance_events row per status change (and one for the creation), with the actor from berth.actor and the reason from status_reason_code and status_reason. Fires on tool_instances only.';
revoke all on function berth_private.append_status_event() from public, anon, authenticated, service_role;

create trigger append_status_event
  after insert or update of status on public.tool_instances
  for each row execute function berth_private.append_status_event();

-- Append-only events --------------------------------------------------------------------------

create function berth_private.reject_event_change()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Deleting an account or an instance cascades here from a foreign key action, which runs
  -- one trigger level deeper than a direct statement. Only those deletes pass.
  if tg_op = 'DELETE' and pg_catalog.pg_trigger_depth() > 1 then
    return old;
  end if;
  raise exception 'instance_events is append-only: % is not allowed', tg_op
    using errcode = 'BT013',
          table = 'instance_events';
end;
$$;

comment on function berth_private.reject_event_change() is
  'Trigger: keeps instance_events append-only by rejecting update, delete and truncate with SQLSTATE BT013, except deletes cascading from a deleted account or instance.';
revoke all on function berth_private.reject_event_change() from public, anon, authenticated, service_role;

create trigger reject_event_change
  before update or delete on public.instance_events
  for each row execute function berth_private.reject_event_change();

create trigger reject_event_truncate
  before truncate on public.instance_events
  for each statement execute function berth_private.reject_event_change();
