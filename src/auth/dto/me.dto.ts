import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class MeDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'https://login.example.org/' })
  issuer: string;

  @ApiProperty({ example: '5c1a9e…' })
  subject: string;

  @ApiPropertyOptional({ example: 'ada@example.org' })
  email?: string;

  @ApiPropertyOptional({ example: 'Ada Lovelace' })
  name?: string;

  @ApiProperty({ type: [String], example: ['urn:mace:example.org:group:lab#idp.example.org'] })
  entitlements: string[];

  @ApiProperty({ enum: ['user', 'operator', 'admin'], isArray: true, example: ['user'] })
  roles: string[];

  @ApiProperty({ enum: ['session', 'bearer', 'pat'], description: 'How this request signed in.' })
  authenticatedBy: string;

  @ApiPropertyOptional({ type: [String], description: 'Personal access tokens only.' })
  scopes?: string[];
}
