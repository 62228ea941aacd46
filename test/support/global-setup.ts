import 'reflect-metadata';
import { createTemplateDatabase, TEMPLATE_ENV } from './database';
import { ensureServices } from './services';

export default async function globalSetup(): Promise<void> {
  await ensureServices();
  const template = `labgate_tpl_${process.pid}_${Date.now().toString(36)}`;
  await createTemplateDatabase(template);
  process.env[TEMPLATE_ENV] = template;
}
