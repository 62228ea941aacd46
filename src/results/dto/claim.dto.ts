import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { PageQuery } from '../../common/pagination';
import { CLAIM_STATES, type ClaimState } from '../result-claim.entity';
import {
  RESULT_STATUSES,
  RESULT_VISIBILITIES,
  type ResultStatus,
  type ResultVisibility,
} from '../result.entity';

export class ClaimedResultDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ example: 'float-add' })
  service: string;

  @ApiProperty({ format: 'uuid' })
  ownerId: string;

  @ApiProperty({ enum: RESULT_VISIBILITIES, enumName: 'ResultVisibility' })
  visibility: ResultVisibility;

  @ApiProperty({ enum: RESULT_STATUSES, enumName: 'ResultStatus' })
  status: ResultStatus;

  @ApiProperty({ example: '/api/v1/results/3f0c…' })
  url: string;
}

export class ClaimDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ format: 'uuid' })
  resultId: string;

  @ApiProperty({ format: 'uuid' })
  claimantId: string;

  @ApiProperty()
  reason: string;

  @ApiProperty({ enum: CLAIM_STATES, enumName: 'ClaimState' })
  state: ClaimState;

  @ApiProperty()
  createdAt: Date;

  @ApiPropertyOptional()
  decidedAt?: Date;

  @ApiPropertyOptional({ format: 'uuid', description: 'The admin who decided.' })
  decidedBy?: string;

  @ApiPropertyOptional()
  note?: string;

  @ApiPropertyOptional({ type: ClaimedResultDto, description: 'Admins: the claimed result.' })
  result?: ClaimedResultDto;
}

export class ClaimPageDto {
  @ApiProperty({ type: [ClaimDto] })
  items: ClaimDto[];

  @ApiPropertyOptional({ description: 'Pass as ?cursor= for the next page; absent on the last.' })
  nextCursor?: string;
}

export class ListClaimsQuery extends PageQuery {
  @ApiPropertyOptional({ enum: CLAIM_STATES, enumName: 'ClaimState', default: 'pending' })
  @IsOptional()
  @IsIn(CLAIM_STATES, { message: `state must be one of ${CLAIM_STATES.join(', ')}` })
  state: ClaimState = 'pending';
}

export class DecideClaimDto {
  @ApiPropertyOptional({ maxLength: 2000, description: 'Why; kept with the claim and audited.' })
  @IsOptional()
  @IsString()
  @MaxLength(2000)
  note?: string;
}
