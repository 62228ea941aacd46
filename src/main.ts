import { runMain } from './process-runner';

/** `npm start`: ROLE=all (default) runs the API and the worker in this one process. */
runMain();
