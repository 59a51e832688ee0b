-- Realtime: publish instance rows and events so the UI sees status changes as they happen.
-- Supabase Realtime applies the select policies, so each owner receives only their own rows.

do $$
declare
  publication record;
  target text;
begin
  select pubname, puballtables into publication from pg_catalog.pg_publication where pubname = 'supabase_realtime';
  if not found then
    raise notice 'publication supabase_realtime does not exist; Realtime is not set up for Berth tables';
    return;
  end if;
  if publication.puballtables then
    raise notice 'publication supabase_realtime already publishes all tables';
    return;
  end if;

  foreach target in array array['tool_instances', 'instance_events'] loop
    if not exists (
      select 1 from pg_catalog.pg_publication_tables
      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = target
    ) then
      execute format('alter publication supabase_realtime add table public.%I', target);
    end if;
  end loop;
end
$$;
