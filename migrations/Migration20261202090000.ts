import { Migration } from '@mikro-orm/migrations';

/**
 * Every update and delete of a job notifies `labgate_job_changed` with the job's id, sent by
 * PostgreSQL when the change commits: API processes drop their in-memory view of that job
 * (src/jobs/job-view-cache.ts), whoever made the change.
 */
export class Migration20261202090000 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create or replace function "job_changed_notify"() returns trigger
      language plpgsql as $$
      begin
        perform pg_notify('labgate_job_changed', old.id::text);
        return null;
      end $$;`);
    this.addSql(`create trigger "job_changed_notify" after update or delete on "job"
      for each row execute function "job_changed_notify"();`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop trigger if exists "job_changed_notify" on "job";`);
    this.addSql(`drop function if exists "job_changed_notify"();`);
  }
}
