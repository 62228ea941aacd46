import type { ClaimDto } from './dto/claim.dto';
import type { ResultDto } from './dto/result.dto';
import type { ResultClaim } from './result-claim.entity';
import type { Result } from './result.entity';

export const resultUrl = (id: string) => `/api/v1/results/${id}`;

/** Each path segment encoded on its own, so that `plots/a b.png` stays a nested path. */
export function artifactUrl(resultId: string, name: string): string {
  return `${resultUrl(resultId)}/artifacts/${name.split('/').map(encodeURIComponent).join('/')}`;
}

export function toResultDto(result: Result): ResultDto {
  return {
    id: result.id,
    service: result.service,
    serviceVersion: result.serviceVersion ?? undefined,
    jobId: result.jobId ?? undefined,
    deviceId: result.deviceId ?? undefined,
    ownerId: result.owner.id,
    metrics: result.metrics,
    artifacts: result.artifacts.map(({ name, size, mediaType }) => ({
      name,
      size,
      mediaType,
      url: artifactUrl(result.id, name),
    })),
    tags: result.tags,
    visibility: result.visibility,
    status: result.status,
    createdAt: result.createdAt,
    executedAt: result.executedAt,
    updatedAt: result.updatedAt,
  };
}

/** `withResult`: admins see what was claimed; a claimant gets the claim alone. */
export function toClaimDto(claim: ResultClaim, withResult: boolean): ClaimDto {
  const { result } = claim;
  return {
    id: claim.id,
    resultId: result.id,
    claimantId: claim.claimant.id,
    reason: claim.reason,
    state: claim.state,
    createdAt: claim.createdAt,
    decidedAt: claim.decidedAt ?? undefined,
    decidedBy: claim.decidedBy ?? undefined,
    note: claim.decisionNote ?? undefined,
    result: withResult
      ? {
          id: result.id,
          service: result.service,
          ownerId: result.owner.id,
          visibility: result.visibility,
          status: result.status,
          url: resultUrl(result.id),
        }
      : undefined,
  };
}
