import { Migration } from '@mikro-orm/migrations';

export class Migration20261124152911 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "job_event" add column "data" jsonb null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "job_event" drop column "data";`);
  }
}
