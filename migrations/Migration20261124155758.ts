import { Migration } from '@mikro-orm/migrations';

export class Migration20261124155758 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "result_feed_cursor" ("name" text not null, "position" bigint not null default '0', "updated_at" timestamptz not null, constraint "result_feed_cursor_pkey" primary key ("name"));`,
    );

    this.addSql(
      `create table "result" ("id" uuid not null, "job_id" uuid null, "service" text not null, "service_version" text null, "owner_id" uuid not null, "device_id" uuid null, "metrics" jsonb not null, "artifacts" jsonb not null, "archive_key" text null, "archive_size" bigint null, "archive_sha256" text null, "tags" text[] not null, "visibility" text check ("visibility" in ('private', 'institution', 'public')) not null default 'private', "status" text check ("status" in ('published', 'under_review', 'removed')) not null default 'published', "created_at" timestamptz not null, "executed_at" timestamptz not null, "updated_at" timestamptz not null, constraint "result_pkey" primary key ("id"));`,
    );
    this.addSql(`alter table "result" add constraint "result_job_id_unique" unique ("job_id");`);
    this.addSql(`create index "result_tags_gin" on "result" using gin ("tags");`);
    this.addSql(
      `create index "result_metrics_gin" on "result" using gin ("metrics" jsonb_path_ops);`,
    );
    this.addSql(
      `create index "result_device_id_created_at_id_index" on "result" ("device_id", "created_at", "id");`,
    );
    this.addSql(
      `create index "result_owner_id_created_at_id_index" on "result" ("owner_id", "created_at", "id");`,
    );
    this.addSql(
      `create index "result_service_created_at_id_index" on "result" ("service", "created_at", "id");`,
    );
    this.addSql(`create index "result_executed_at_id_index" on "result" ("executed_at", "id");`);
    this.addSql(`create index "result_created_at_id_index" on "result" ("created_at", "id");`);

    this.addSql(
      `create table "result_metric" ("result_id" uuid not null, "path" text not null, "kind" smallint not null, "value" jsonb not null, constraint "result_metric_pkey" primary key ("result_id", "path"));`,
    );
    this.addSql(
      `create index "result_metric_path_kind_value_result_id_index" on "result_metric" ("path", "kind", "value", "result_id");`,
    );

    this.addSql(
      `create table "result_claim" ("id" uuid not null, "result_id" uuid not null, "claimant_id" uuid not null, "reason" text not null, "state" text check ("state" in ('pending', 'approved', 'rejected')) not null default 'pending', "created_at" timestamptz not null, "decided_at" timestamptz null, "decided_by" uuid null, "decision_note" text null, constraint "result_claim_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "result_claim_result_id_index" on "result_claim" ("result_id");`);
    this.addSql(
      `create index "result_claim_state_created_at_id_index" on "result_claim" ("state", "created_at", "id");`,
    );
    this.addSql(
      `create unique index "result_claim_one_pending" on "result_claim" ("result_id") where "state" = 'pending';`,
    );

    // Written by hand (MikroORM has no triggers): result_metric holds each scalar of a
    // result's metrics under its dotted path (identifier segments only, as the query language
    // names them; at most 10 deep), so that range filters and sorts on any metric path have a
    // btree index. kind orders types as jsonb does: 1 string, 2 number, 3 boolean.
    this.addSql(`create function "result_metric_leaves"(doc jsonb)
      returns table ("path" text, "kind" smallint, "value" jsonb)
      language sql immutable as $$
        with recursive walk ("path", "depth", "value") as (
          select e.key, 1, e.value
            from jsonb_each(case when jsonb_typeof(doc) = 'object' then doc else '{}' end) e
           where e.key ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'
          union all
          select w.path || '.' || e.key, w.depth + 1, e.value
            from walk w, jsonb_each(w.value) e
           where jsonb_typeof(w.value) = 'object' and w.depth < 10
             and e.key ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'
        )
        select w.path,
               (case jsonb_typeof(w.value) when 'string' then 1 when 'number' then 2 else 3 end)::smallint,
               w.value
          from walk w
         where jsonb_typeof(w.value) in ('string', 'number', 'boolean')
      $$;`);
    // Statement-level on insert (one pass over a multi-row insert); row-level on a change of
    // metrics, which the application never makes but a repair by hand might.
    this.addSql(`create function "result_metric_insert"() returns trigger language plpgsql as $$
      begin
        insert into "result_metric" ("result_id", "path", "kind", "value")
          select n.id, l.path, l.kind, l.value from new_results n, result_metric_leaves(n.metrics) l;
        return null;
      end $$;`);
    this.addSql(`create function "result_metric_update"() returns trigger language plpgsql as $$
      begin
        delete from "result_metric" where "result_id" = old.id;
        insert into "result_metric" ("result_id", "path", "kind", "value")
          select new.id, l.path, l.kind, l.value from result_metric_leaves(new.metrics) l;
        return null;
      end $$;`);
    this.addSql(`create trigger "result_metric_insert" after insert on "result"
      referencing new table as new_results for each statement execute function "result_metric_insert"();`);
    this.addSql(`create trigger "result_metric_update" after update of "metrics" on "result"
      for each row when (old.metrics is distinct from new.metrics) execute function "result_metric_update"();`);

    this.addSql(
      `alter table "result" add constraint "result_owner_id_foreign" foreign key ("owner_id") references "app_user" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "result_metric" add constraint "result_metric_result_id_foreign" foreign key ("result_id") references "result" ("id") on update cascade on delete cascade;`,
    );

    this.addSql(
      `alter table "result_claim" add constraint "result_claim_result_id_foreign" foreign key ("result_id") references "result" ("id") on update cascade on delete cascade;`,
    );
    this.addSql(
      `alter table "result_claim" add constraint "result_claim_claimant_id_foreign" foreign key ("claimant_id") references "app_user" ("id") on update cascade on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "result_metric_update" on "result";`);
    this.addSql(`drop trigger if exists "result_metric_insert" on "result";`);
    this.addSql(`drop function if exists "result_metric_update"();`);
    this.addSql(`drop function if exists "result_metric_insert"();`);
    this.addSql(`drop function if exists "result_metric_leaves"(jsonb);`);

    this.addSql(`alter table "result_metric" drop constraint "result_metric_result_id_foreign";`);

    this.addSql(`alter table "result_claim" drop constraint "result_claim_result_id_foreign";`);

    this.addSql(`drop table if exists "result_feed_cursor" cascade;`);

    this.addSql(`drop table if exists "result" cascade;`);

    this.addSql(`drop table if exists "result_metric" cascade;`);

    this.addSql(`drop table if exists "result_claim" cascade;`);
  }
}
