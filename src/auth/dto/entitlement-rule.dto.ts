import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsEnum, IsString, Length } from 'class-validator';
import { GrantedRole, RuleMatch } from '../entitlement-rule.entity';

export class CreateEntitlementRuleDto {
  @ApiProperty({ example: 'urn:mace:example.org:group:lab-admins' })
  @IsString()
  @Length(1, 500)
  entitlement: string;

  @ApiProperty({ enum: RuleMatch, description: 'exact: equal; prefix: starts with.' })
  @IsEnum(RuleMatch)
  match: RuleMatch;

  @ApiProperty({ enum: GrantedRole })
  @IsEnum(GrantedRole)
  role: GrantedRole;
}

export class EntitlementRuleDto extends CreateEntitlementRuleDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiPropertyOptional({ format: 'uuid' })
  createdBy?: string;

  @ApiProperty()
  createdAt: Date;
}
