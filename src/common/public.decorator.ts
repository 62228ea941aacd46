import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'labgate:public';

/** The route needs no credentials (health, login, documentation). Everything else does. */
export const Public = () => SetMetadata(IS_PUBLIC, true);
