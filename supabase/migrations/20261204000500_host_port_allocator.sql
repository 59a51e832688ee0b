-- Host port allocation per toolbox. A port comes from the toolbox's range, is never the agent's
-- port, and is unique among the toolbox's live instances. The unique index
-- tool_instances_toolbox_host_port_live_key is what makes concurrent allocation safe: two
-- transactions may pick the same candidate, but only one insert can commit, and the loser
-- retries with the next free port. The retry loops live in create_instance and
-- reallocate_host_port, which write the row.

create function berth_private.next_free_host_port(p_toolbox_id uuid, p_exclude_port integer default null)
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
    and candidate.port is distinct from p_exclude_port
    and not exists (
      select 1
      from public.tool_instances as i
      where i.toolbox_id = t.id
        and i.host_port = candidate.port
        and i.status <> 'removed'
    )
  order by candidate.port
  limit 1
$$;

comment on function berth_private.next_free_host_port(uuid, integer) is
  'Returns the lowest host port of the toolbox''s range that is not the agent port, not p_exclude_port and not held by a live instance, or null when none is left. A candidate only: the unique index decides. Internal to the allocator.';
revoke all on function berth_private.next_free_host_port(uuid, integer) from public, anon, authenticated, service_role;

create function berth_private.raise_ports_exhausted(p_toolbox_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  box public.toolboxes;
begin
  select * into box from public.toolboxes where id = p_toolbox_id;
  raise exception 'no free host port on toolbox % (%): every port in %-% except the agent port % is taken by a live instance',
      box.id, box.name, box.port_range_start, box.port_range_end, box.agent_port
    using errcode = 'BT005',
          detail = format('toolbox_id=%s port_range_start=%s port_range_end=%s agent_port=%s',
                          box.id, box.port_range_start, box.port_range_end, box.agent_port),
          hint = 'Remove instances on this toolbox or widen its port range.',
          table = 'tool_instances',
          column = 'host_port';
end;
$$;

comment on function berth_private.raise_ports_exhausted(uuid) is
  'Raises SQLSTATE BT005 naming the toolbox and its port range. Internal to the allocator.';
revoke all on function berth_private.raise_ports_exhausted(uuid) from public, anon, authenticated, service_role;
