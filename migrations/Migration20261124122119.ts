import { Migration } from '@mikro-orm/migrations';

export class Migration20261124122119 extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "service_state" ("key" text not null, "enabled" boolean not null default true, "updated_at" timestamptz not null, "updated_by" uuid null, constraint "service_state_pkey" primary key ("key"));`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "service_state" cascade;`);
  }
}
