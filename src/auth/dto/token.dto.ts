import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsDate,
  IsIn,
  IsString,
  Length,
  MinDate,
} from 'class-validator';
import { TOKEN_SCOPES, TokenScope } from '../personal-access-token.entity';

export class CreateTokenDto {
  @ApiProperty({ example: 'laptop scripts', minLength: 1, maxLength: 100 })
  @IsString()
  @Length(1, 100)
  name: string;

  @ApiProperty({
    example: '2027-01-31T00:00:00Z',
    description: 'When the token stops working (at most a year ahead).',
    type: String,
    format: 'date-time',
  })
  @Type(() => Date)
  @IsDate({ message: 'expiresAt must be an ISO 8601 date-time' })
  @MinDate(() => new Date(), { message: 'expiresAt must be in the future' })
  expiresAt: Date;

  @ApiProperty({
    enum: TOKEN_SCOPES,
    isArray: true,
    example: ['read'],
    description:
      'read: GET requests; write: also changes; admin: the roles of its owner (else a token acts as a plain user).',
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayUnique()
  @IsIn(TOKEN_SCOPES, { each: true })
  scopes: TokenScope[];
}

export class TokenDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty()
  name: string;

  @ApiProperty({ description: 'The first characters of the token.', example: 'lgp_3hQ8' })
  hint: string;

  @ApiProperty({ enum: TOKEN_SCOPES, isArray: true })
  scopes: TokenScope[];

  @ApiProperty()
  expiresAt: Date;

  @ApiProperty()
  createdAt: Date;

  @ApiPropertyOptional()
  lastUsedAt?: Date;

  @ApiPropertyOptional()
  revokedAt?: Date;
}

export class CreatedTokenDto extends TokenDto {
  @ApiProperty({ description: 'The token itself. Shown only this once.', example: 'lgp_…' })
  token: string;
}
