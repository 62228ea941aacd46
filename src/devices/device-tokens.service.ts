import { Injectable } from '@nestjs/common';
import { EntityManager } from '@mikro-orm/postgresql';
import { hashSecret, newSecret } from '../auth/secrets';
import type { DevicePrincipal } from '../common/principal';
import { DEVICE_TOKEN_PREFIX } from './device-state';
import { Device } from './device.entity';

/** Device tokens: issued once, stored as SHA-256, checked on every agent request. */
@Injectable()
export class DeviceTokens {
  constructor(private readonly em: EntityManager) {}

  /** A fresh token and what to store of it. */
  issue(): { token: string; tokenHash: string; tokenHint: string } {
    const token = newSecret(DEVICE_TOKEN_PREFIX);
    return { token, tokenHash: hashSecret(token), tokenHint: token.slice(0, 8) };
  }

  async authenticate(token: string): Promise<DevicePrincipal | undefined> {
    const device = await this.em
      .fork()
      .findOne(Device, { tokenHash: hashSecret(token) }, { fields: ['id', 'name'] });
    return device ? { kind: 'device', deviceId: device.id, name: device.name } : undefined;
  }
}
