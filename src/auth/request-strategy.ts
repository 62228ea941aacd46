import type { Request } from 'express';
import passport from 'passport';

type Verify = (req: Request, done: (err: unknown, user?: unknown) => void) => void;

/**
 * A passport strategy that hands the whole request to a verify callback: labgate reads
 * several credentials (cookie, bearer JWT, opaque token, personal access token) in one place.
 */
export class RequestStrategy extends passport.Strategy {
  constructor(private readonly verify: Verify) {
    super();
  }

  override authenticate(req: Request): void {
    this.verify(req, (err, user) => {
      if (err) {
        this.error(err);
      } else if (user) {
        this.success(user);
      } else {
        this.fail(401);
      }
    });
  }
}
