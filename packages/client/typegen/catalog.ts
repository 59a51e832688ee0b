import type { Sql } from "postgres";

/** One PostgreSQL type as `pg_type` describes it, enough to map it to TypeScript. */
export interface CatalogType {
  oid: number;
  name: string;
  schema: string;
  /** `pg_type.typtype`: b base, c composite, d domain, e enum, p pseudo, r range, m multirange. */
  kind: string;
  /** `pg_type.typcategory`; `A` marks an array type. */
  category: string;
  elementOid: number;
  baseOid: number;
}

export interface CatalogColumn {
  name: string;
  typeOid: number;
  nullable: boolean;
  hasDefault: boolean;
  /** `a` generated always as identity, `d` by default, empty otherwise. */
  identity: string;
  /** `s` for a stored generated column, empty otherwise. */
  generated: string;
}

export interface CatalogRelationship {
  foreignKeyName: string;
  columns: string[];
  isOneToOne: boolean;
  referencedRelation: string;
  referencedColumns: string[];
}

export interface CatalogRelation {
  name: string;
  /** `pg_class.relkind`: r table, p partitioned table, v view, m materialized view, f foreign table. */
  kind: string;
  insertable: boolean;
  updatable: boolean;
  columns: CatalogColumn[];
  relationships: CatalogRelationship[];
}

export interface CatalogArgument {
  name: string;
  typeOid: number;
  hasDefault: boolean;
}

export interface CatalogFunction {
  name: string;
  arguments: CatalogArgument[];
  returnTypeOid: number;
  returnsSet: boolean;
  /** OUT, INOUT and TABLE columns, which make up the returned record when present. */
  outColumns: Array<{ name: string; typeOid: number }>;
}

export interface Catalog {
  schema: string;
  relations: CatalogRelation[];
  enums: Map<string, string[]>;
  compositeTypes: Map<string, Array<{ name: string; typeOid: number }>>;
  functions: CatalogFunction[];
  types: Map<number, CatalogType>;
  /** Labels of every enum type in the database by type oid, for enums outside `schema`. */
  enumLabels: Map<number, string[]>;
}

/**
 * Reads what PostgREST exposes from one schema: tables and views with their columns and foreign
 * keys, enums, composite types and functions. Every list is sorted by name so the generated file
 * does not change when objects are created in another order.
 */
export async function readCatalog(sql: Sql, schema: string): Promise<Catalog> {
  const [types, enumLabels, relations, compositeTypes, functions] = await Promise.all([
    readTypes(sql),
    readEnumLabels(sql),
    readRelations(sql, schema),
    readCompositeTypes(sql, schema),
    readFunctions(sql, schema),
  ]);

  const enums = new Map<string, string[]>();
  for (const type of [...types.values()].sort((a, b) => compareNames(a.name, b.name))) {
    if (type.schema === schema && type.kind === "e") enums.set(type.name, enumLabels.get(type.oid) ?? []);
  }

  return { schema, relations, enums, compositeTypes, functions, types, enumLabels };
}

async function readTypes(sql: Sql): Promise<Map<number, CatalogType>> {
  const rows = await sql<Array<{ oid: number; name: string; schema: string; kind: string; category: string; element_oid: number; base_oid: number }>>`
    select t.oid::int as oid, t.typname as name, n.nspname as schema, t.typtype as kind,
      t.typcategory as category, t.typelem::int as element_oid, t.typbasetype::int as base_oid
    from pg_catalog.pg_type t
    join pg_catalog.pg_namespace n on n.oid = t.typnamespace
  `;
  return new Map(
    rows.map((row) => [row.oid, { oid: row.oid, name: row.name, schema: row.schema, kind: row.kind, category: row.category, elementOid: row.element_oid, baseOid: row.base_oid }]),
  );
}

async function readEnumLabels(sql: Sql): Promise<Map<number, string[]>> {
  const rows = await sql<Array<{ type_oid: number; labels: string[] }>>`
    select enumtypid::int as type_oid, array_agg(enumlabel::text order by enumsortorder) as labels
    from pg_catalog.pg_enum
    group by enumtypid
  `;
  return new Map(rows.map((row) => [row.type_oid, row.labels]));
}

async function readRelations(sql: Sql, schema: string): Promise<CatalogRelation[]> {
  const rows = await sql<Array<{ oid: number; name: string; kind: string; updatable_events: number }>>`
    select c.oid::int as oid, c.relname as name, c.relkind as kind,
      pg_catalog.pg_relation_is_updatable(c.oid, false) as updatable_events
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relkind in ('r', 'p', 'v', 'm', 'f')
    order by c.relname collate "C"
  `;
  const columns = await readColumns(sql, schema);
  const relationships = await readRelationships(sql, schema);

  // pg_relation_is_updatable returns a bit mask of rule events: 4 is UPDATE, 8 is INSERT.
  return rows.map((row) => ({
    name: row.name,
    kind: row.kind,
    insertable: (row.updatable_events & 8) !== 0,
    updatable: (row.updatable_events & 4) !== 0,
    columns: columns.get(row.oid) ?? [],
    relationships: relationships.get(row.oid) ?? [],
  }));
}

async function readColumns(sql: Sql, schema: string): Promise<Map<number, CatalogColumn[]>> {
  const rows = await sql<Array<{ relation_oid: number; name: string; type_oid: number; not_null: boolean; has_default: boolean; identity: string; generated: string }>>`
    select a.attrelid::int as relation_oid, a.attname as name, a.atttypid::int as type_oid,
      a.attnotnull as not_null, a.atthasdef as has_default,
      a.attidentity::text as identity, a.attgenerated::text as generated
    from pg_catalog.pg_attribute a
    join pg_catalog.pg_class c on c.oid = a.attrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = ${schema} and c.relkind in ('r', 'p', 'v', 'm', 'f')
      and a.attnum > 0 and not a.attisdropped
    order by a.attname collate "C"
  `;

  const byRelation = new Map<number, CatalogColumn[]>();
  for (const row of rows) {
    const list = byRelation.get(row.relation_oid) ?? [];
    list.push({ name: row.name, typeOid: row.type_oid, nullable: !row.not_null, hasDefault: row.has_default, identity: row.identity, generated: row.generated });
    byRelation.set(row.relation_oid, list);
  }
  return byRelation;
}

/**
 * Reads foreign keys between relations of the schema. Keys that point into another schema are
 * left out because PostgREST cannot embed a relation it does not expose.
 */
async function readRelationships(sql: Sql, schema: string): Promise<Map<number, CatalogRelationship[]>> {
  const rows = await sql<Array<{ relation_oid: number; name: string; columns: string[]; referenced_relation: string; referenced_columns: string[]; one_to_one: boolean }>>`
    select con.conrelid::int as relation_oid, con.conname as name,
      array(
        select a.attname from unnest(con.conkey) with ordinality as k(attnum, position)
        join pg_catalog.pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum
        order by k.position
      )::text[] as columns,
      target.relname as referenced_relation,
      array(
        select a.attname from unnest(con.confkey) with ordinality as k(attnum, position)
        join pg_catalog.pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum
        order by k.position
      )::text[] as referenced_columns,
      exists (
        select 1 from pg_catalog.pg_index i
        where i.indrelid = con.conrelid and i.indisunique and i.indpred is null
          and (select array_agg(x order by x) from unnest(i.indkey::int2[]) as x)
            = (select array_agg(x order by x) from unnest(con.conkey) as x)
      ) as one_to_one
    from pg_catalog.pg_constraint con
    join pg_catalog.pg_class source on source.oid = con.conrelid
    join pg_catalog.pg_namespace source_ns on source_ns.oid = source.relnamespace
    join pg_catalog.pg_class target on target.oid = con.confrelid
    join pg_catalog.pg_namespace target_ns on target_ns.oid = target.relnamespace
    where con.contype = 'f' and source_ns.nspname = ${schema} and target_ns.nspname = ${schema}
    order by con.conname collate "C"
  `;

  const byRelation = new Map<number, CatalogRelationship[]>();
  for (const row of rows) {
    const list = byRelation.get(row.relation_oid) ?? [];
    list.push({ foreignKeyName: row.name, columns: row.columns, isOneToOne: row.one_to_one, referencedRelation: row.referenced_relation, referencedColumns: row.referenced_columns });
    byRelation.set(row.relation_oid, list);
  }
  return byRelation;
}

async function readCompositeTypes(sql: Sql, schema: string): Promise<Map<string, Array<{ name: string; typeOid: number }>>> {
  const rows = await sql<Array<{ type_name: string; name: string; type_oid: number }>>`
    select t.typname as type_name, a.attname as name, a.atttypid::int as type_oid
    from pg_catalog.pg_type t
    join pg_catalog.pg_namespace n on n.oid = t.typnamespace
    join pg_catalog.pg_class c on c.oid = t.typrelid and c.relkind = 'c'
    join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    where n.nspname = ${schema} and t.typtype = 'c'
    order by t.typname collate "C", a.attnum
  `;

  const byType = new Map<string, Array<{ name: string; typeOid: number }>>();
  for (const row of rows) {
    const list = byType.get(row.type_name) ?? [];
    list.push({ name: row.name, typeOid: row.type_oid });
    byType.set(row.type_name, list);
  }
  return byType;
}

/**
 * Reads the plain functions of the schema that PostgREST can call. Trigger functions,
 * aggregates and procedures are left out, as are functions with unnamed input arguments,
 * because PostgREST passes arguments by name.
 */
async function readFunctions(sql: Sql, schema: string): Promise<CatalogFunction[]> {
  const rows = await sql<Array<{ name: string; arg_names: string[] | null; arg_modes: string[] | null; arg_types: number[]; input_types: number[]; default_count: number; return_type: number; returns_set: boolean }>>`
    select p.proname as name, p.proargnames::text[] as arg_names, p.proargmodes::text[] as arg_modes,
      coalesce(p.proallargtypes::int[], p.proargtypes::int[]) as arg_types,
      p.proargtypes::int[] as input_types, p.pronargdefaults::int as default_count,
      p.prorettype::int as return_type, p.proretset as returns_set
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    where n.nspname = ${schema} and p.prokind = 'f'
      and p.prorettype not in ('pg_catalog.trigger'::regtype, 'pg_catalog.event_trigger'::regtype)
    order by p.proname collate "C", p.proargtypes::text
  `;

  const functions: CatalogFunction[] = [];
  for (const row of rows) {
    const parsed = toCatalogFunction(row);
    if (parsed) functions.push(parsed);
  }
  return functions;
}

function toCatalogFunction(row: { name: string; arg_names: string[] | null; arg_modes: string[] | null; arg_types: number[]; input_types: number[]; default_count: number; return_type: number; returns_set: boolean }): CatalogFunction | undefined {
  const inputs: Array<{ name: string; typeOid: number }> = [];
  const outColumns: Array<{ name: string; typeOid: number }> = [];

  row.arg_types.forEach((typeOid, index) => {
    const mode = row.arg_modes?.[index] ?? "i";
    const name = row.arg_names?.[index] ?? "";
    if (mode === "i" || mode === "b" || mode === "v") inputs.push({ name, typeOid });
    if (mode === "o" || mode === "b" || mode === "t") outColumns.push({ name, typeOid });
  });
  if (inputs.some((input) => input.name === "")) return undefined;

  // Defaults belong to the last `pronargdefaults` input arguments.
  const firstDefault = inputs.length - row.default_count;
  const args = inputs.map((input, index) => ({ ...input, hasDefault: index >= firstDefault }));
  return { name: row.name, arguments: args, returnTypeOid: row.return_type, returnsSet: row.returns_set, outColumns };
}

/** Orders names by code point, like `collate "C"`, so output does not depend on the locale. */
export function compareNames(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}
