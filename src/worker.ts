import { runMain } from './process-runner';

/** `npm run start:worker`: Bull processors only, no HTTP listener. */
runMain('worker');
