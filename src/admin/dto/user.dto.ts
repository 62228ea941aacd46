import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsIn, IsOptional, IsString, IsUUID, MaxLength } from 'class-validator';
import { PageQuery } from '../../common/pagination';
import type { Role } from '../../common/principal';

export const ROLES: readonly Role[] = ['user', 'operator', 'admin'];

/** `?blocked=true|false`: a query string is text, and "false" must not read as true. */
function asBoolean({ value }: { value: unknown }): unknown {
  return value === 'true' ? true : value === 'false' ? false : value;
}

export class ListUsersQuery extends PageQuery {
  @ApiPropertyOptional({
    example: 'ada',
    description: 'Part of the email, name or subject (case-insensitive).',
  })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  q?: string;

  @ApiPropertyOptional({
    enum: ROLES,
    enumName: 'Role',
    description: 'Users holding this role now (admins hold operator too).',
  })
  @IsOptional()
  @IsIn(ROLES, { message: `role must be one of ${ROLES.join(', ')}` })
  role?: Role;

  @ApiPropertyOptional({ type: Boolean })
  @IsOptional()
  @Transform(asBoolean)
  @IsBoolean({ message: 'blocked must be true or false' })
  blocked?: boolean;
}

export class UserIdParam {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'id must be a UUID' })
  id: string;
}

export class UpdateUserDto {
  @ApiProperty({
    description: "true: the user's sessions and tokens are refused from the next request on.",
  })
  @IsBoolean({ message: 'blocked must be a boolean' })
  blocked: boolean;
}

export class AdminUserDto {
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

  @ApiProperty({
    type: [String],
    example: ['urn:mace:example.org:group:lab#idp.example.org'],
    description: 'As the identity provider last asserted them.',
  })
  entitlements: string[];

  @ApiProperty({
    enum: ROLES,
    enumName: 'Role',
    isArray: true,
    example: ['user'],
    description: 'Effective roles, from ADMIN_/OPERATOR_ENTITLEMENTS and the entitlement rules.',
  })
  roles: Role[];

  @ApiProperty()
  blocked: boolean;

  @ApiProperty()
  createdAt: Date;

  @ApiPropertyOptional({
    description:
      'Last browser sign-in or use of an access token (personal access tokens: to the minute).',
  })
  lastLoginAt?: Date;
}

export class AdminUserPageDto {
  @ApiProperty({ type: [AdminUserDto] })
  items: AdminUserDto[];

  @ApiPropertyOptional({ description: 'Pass as ?cursor= for the next page; absent on the last.' })
  nextCursor?: string;
}
