import { Migration } from '@mikro-orm/migrations';

/**
 * result_metric_path: the (service, metric path) pairs results have carried, kept by the
 * result_metric triggers (see Migration20261124155758), filled here from what is stored; and
 * an index on result (service, id) for listings of one service in id order.
 */
export class Migration20261202053000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "result_metric_path" ("service" text not null, "path" text not null, constraint "result_metric_path_pkey" primary key ("service", "path"));`,
    );
    this.addSql(`insert into "result_metric_path" ("service", "path")
      select distinct r."service", m."path" from "result_metric" m join "result" r on r."id" = m."result_id";`);
    this.addSql(`create index "result_service_id_index" on "result" ("service", "id");`);
    this
      .addSql(`create or replace function "result_metric_insert"() returns trigger language plpgsql as $$
      begin
        with leaves as (
          select n.id, n.service, l.path, l.kind, l.value
            from new_results n, result_metric_leaves(n.metrics) l),
        paths as (
          insert into "result_metric_path" ("service", "path")
            select distinct service, path from leaves on conflict do nothing)
        insert into "result_metric" ("result_id", "path", "kind", "value")
          select id, path, kind, value from leaves;
        return null;
      end $$;`);
    this
      .addSql(`create or replace function "result_metric_update"() returns trigger language plpgsql as $$
      begin
        delete from "result_metric" where "result_id" = old.id;
        with leaves as (select l.path, l.kind, l.value from result_metric_leaves(new.metrics) l),
        paths as (
          insert into "result_metric_path" ("service", "path")
            select new.service, path from leaves on conflict do nothing)
        insert into "result_metric" ("result_id", "path", "kind", "value")
          select new.id, path, kind, value from leaves;
        return null;
      end $$;`);
  }

  override async down(): Promise<void> {
    this
      .addSql(`create or replace function "result_metric_insert"() returns trigger language plpgsql as $$
      begin
        insert into "result_metric" ("result_id", "path", "kind", "value")
          select n.id, l.path, l.kind, l.value from new_results n, result_metric_leaves(n.metrics) l;
        return null;
      end $$;`);
    this
      .addSql(`create or replace function "result_metric_update"() returns trigger language plpgsql as $$
      begin
        delete from "result_metric" where "result_id" = old.id;
        insert into "result_metric" ("result_id", "path", "kind", "value")
          select new.id, l.path, l.kind, l.value from result_metric_leaves(new.metrics) l;
        return null;
      end $$;`);
    this.addSql(`drop index if exists "result_service_id_index";`);
    this.addSql(`drop table if exists "result_metric_path";`);
  }
}
