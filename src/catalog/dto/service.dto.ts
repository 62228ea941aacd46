import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsInt, Max, Min, ValidateIf } from 'class-validator';
import { INPUT_TYPES, InputSpec, InputType, ServiceManifest } from '../manifest';

/** One input of a service's interface, as a client needs it to build a submission. */
export class InputDto {
  @ApiProperty({ example: 'height', description: 'Multipart field (or main.json key) name.' })
  name: string;

  @ApiProperty({ enum: INPUT_TYPES, enumName: 'InputType' })
  type: InputType;

  @ApiPropertyOptional({ example: 'Body height' })
  title?: string;

  @ApiPropertyOptional({ example: 'Standing height of the subject, in metres.' })
  description?: string;

  @ApiProperty({ description: 'False when the input may be left out (its default then applies).' })
  required: boolean;

  @ApiPropertyOptional({
    oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }],
    example: 'height-ratio',
  })
  default?: string | number | boolean;

  @ApiPropertyOptional({ description: 'int/float: smallest value allowed.', example: 0.5 })
  min?: number;

  @ApiPropertyOptional({ description: 'int/float: largest value allowed.', example: 2.5 })
  max?: number;

  @ApiPropertyOptional({ description: 'string: most characters allowed.', example: 1000 })
  maxLength?: number;

  @ApiPropertyOptional({
    description: 'string: regular expression the whole value must match.',
    example: '[A-Za-z0-9 ]+',
  })
  pattern?: string;

  @ApiPropertyOptional({ type: [String], description: 'choice: the allowed values.' })
  options?: string[];

  @ApiPropertyOptional({
    type: [String],
    description: 'file/volume: allowed file name endings (case-insensitive).',
    example: ['.nii', '.nii.gz'],
  })
  extensions?: string[];

  @ApiPropertyOptional({ type: [String], description: 'file/volume: allowed media types.' })
  mediaTypes?: string[];

  @ApiPropertyOptional({ description: 'file/volume: largest upload, in bytes.', example: 10485760 })
  maxBytes?: number;
}

/** A compute service's interface. What it runs (`run`) is the operator's business and not shown. */
export class ServiceDto {
  @ApiProperty({ example: 'float-add' })
  key: string;

  @ApiProperty({ example: 'Add two numbers' })
  title: string;

  @ApiProperty()
  description: string;

  @ApiProperty({ example: '1.0.0' })
  version: string;

  @ApiProperty({ description: 'False when an admin disabled it: submissions are refused.' })
  enabled: boolean;

  @ApiProperty({ description: "Priority of its new jobs (higher first among one user's)." })
  priority: number;

  @ApiProperty({ type: [InputDto] })
  inputs: InputDto[];

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'JSON Schema of the metrics a run reports.',
  })
  resultSchema?: Record<string, unknown>;

  @ApiProperty({ description: 'Days a job’s files are kept.', example: 30 })
  retentionDays: number;

  @ApiPropertyOptional({ description: 'Entitlement a caller needs to see and use the service.' })
  requiredEntitlement?: string;
}

export class UpdateServiceDto {
  @ApiPropertyOptional({ description: 'False to refuse new submissions to the service.' })
  @ValidateIf((dto: UpdateServiceDto) => dto.priority === undefined || dto.enabled !== undefined)
  @IsBoolean({ message: 'enabled must be a boolean (give enabled, priority or both)' })
  enabled?: boolean;

  @ApiPropertyOptional({
    type: 'integer',
    nullable: true,
    minimum: -1000,
    maximum: 1000,
    description: "Priority of the service's new jobs (higher first); null: the manifest's.",
  })
  @ValidateIf((dto: UpdateServiceDto) => dto.priority !== undefined && dto.priority !== null)
  @IsInt()
  @Min(-1000)
  @Max(1000)
  priority?: number | null;
}

function toInputDto(spec: InputSpec): InputDto {
  return {
    name: spec.name,
    type: spec.type,
    title: spec.title,
    description: spec.description,
    required: spec.required,
    default: spec.default,
    min: spec.min,
    max: spec.max,
    maxLength: spec.maxLength,
    pattern: spec.pattern,
    options: spec.options,
    extensions: spec.extensions,
    mediaTypes: spec.mediaTypes,
    maxBytes: spec.maxBytes,
  };
}

/** Explicit, so that a field added to the manifest (such as `run`) is never shown by accident. */
export function toServiceDto(
  manifest: ServiceManifest,
  enabled: boolean,
  priority?: number | null,
): ServiceDto {
  return {
    key: manifest.key,
    title: manifest.title,
    description: manifest.description,
    version: manifest.version,
    enabled,
    priority: priority ?? manifest.priority,
    inputs: manifest.inputs.map(toInputDto),
    resultSchema: manifest.resultSchema,
    retentionDays: manifest.retentionDays,
    requiredEntitlement: manifest.requiredEntitlement,
  };
}
