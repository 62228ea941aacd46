import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Contains, IsInt, IsOptional, IsString, Length, Matches, Max, Min } from 'class-validator';
import type { SshSettings } from '../device.entity';

const ABSOLUTE_PATH = /^\/[^\0]*$/;
export const HOST_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** How the SSH runner reaches a cluster login node; validated in full on every write. */
export class SshSettingsDto implements SshSettings {
  @ApiProperty({ example: 'login.hpc.example.org' })
  @IsString()
  @Length(1, 255)
  host: string;

  @ApiProperty({ type: 'integer', minimum: 1, maximum: 65535, default: 22 })
  @IsInt()
  @Min(1)
  @Max(65535)
  port: number = 22;

  @ApiProperty({ example: 'labgate' })
  @IsString()
  @Length(1, 100)
  username: string;

  @ApiProperty({
    example: '/run/secrets/hpc_key',
    description: 'Absolute path of the private key on the worker machine (never the key itself).',
  })
  @IsString()
  @Length(2, 1000)
  @Matches(ABSOLUTE_PATH, { message: 'privateKeyFile must be an absolute path' })
  privateKeyFile: string;

  @ApiProperty({
    example: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8',
    description: 'The host key fingerprint, as `ssh-keygen -lf` prints it.',
  })
  @IsString()
  @Matches(HOST_FINGERPRINT, {
    message: 'hostFingerprint must be SHA256: followed by 43 base64 characters (ssh-keygen -l)',
  })
  hostFingerprint: string;

  @ApiProperty({ example: '/scratch/labgate', description: 'Absolute remote folder for jobs.' })
  @IsString()
  @Length(2, 1000)
  @Matches(ABSOLUTE_PATH, { message: 'workDir must be an absolute path' })
  workDir: string;

  @ApiProperty({ example: 'sbatch --parsable {script}' })
  @IsString()
  @Length(1, 1000)
  @Contains('{script}', { message: 'submitCommand must contain {script}' })
  submitCommand: string;

  @ApiPropertyOptional({ example: 'sacct -n -X -P -j {id} -o State' })
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  @Contains('{id}', { message: 'statusCommand must contain {id}' })
  statusCommand?: string;

  @ApiPropertyOptional({ example: 'scancel {id}' })
  @IsOptional()
  @IsString()
  @Length(1, 1000)
  @Contains('{id}', { message: 'cancelCommand must contain {id}' })
  cancelCommand?: string;

  @ApiProperty({ type: 'integer', minimum: 1, maximum: 3600, default: 10 })
  @IsInt()
  @Min(1)
  @Max(3600)
  pollSeconds: number = 10;
}
