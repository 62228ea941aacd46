import { Migration } from '@mikro-orm/migrations';

export class Migration20261124122121 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "job_event" ("id" bigserial primary key, "job_id" uuid not null, "at" timestamptz not null, "state" text not null, "previous_state" text null, "reason" text null, "actor" text not null);`,
    );
    this.addSql(`create index "job_event_job_id_id_index" on "job_event" ("job_id", "id");`);

    this.addSql(
      `create table "job" ("id" uuid not null, "service" text not null, "service_version" text not null, "owner_id" uuid not null, "state" text check ("state" in ('queued', 'assigned', 'running', 'succeeded', 'failed', 'cancelled', 'expired')) not null default 'queued', "reason" text null, "inputs" jsonb not null, "input_files" jsonb not null, "token_hash" text not null, "idempotency_key" text null, "request_hash" text null, "progress" int not null default 0, "progress_message" text null, "attempts" int not null default 0, "worker" text null, "metrics" jsonb null, "result_size" bigint null, "result_sha256" text null, "created_at" timestamptz not null, "updated_at" timestamptz not null, "started_at" timestamptz null, "finished_at" timestamptz null, constraint "job_pkey" primary key ("id"));`,
    );
    this.addSql(`create index "job_state_created_at_index" on "job" ("state", "created_at");`);
    this.addSql(
      `create index "job_owner_id_created_at_id_index" on "job" ("owner_id", "created_at", "id");`,
    );
    this.addSql(
      `alter table "job" add constraint "job_owner_id_idempotency_key_unique" unique ("owner_id", "idempotency_key");`,
    );

    this.addSql(
      `alter table "job" add constraint "job_owner_id_foreign" foreign key ("owner_id") references "app_user" ("id") on update cascade on delete cascade;`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "job_event" cascade;`);

    this.addSql(`drop table if exists "job" cascade;`);
  }
}
