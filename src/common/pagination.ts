import { HttpStatus } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { ProblemException } from './problem';

/** `?limit=&cursor=`: keyset pagination, stable under inserts (no offsets). */
export class PageQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit: number = 50;

  @ApiPropertyOptional({ description: 'The nextCursor of the previous page.' })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  cursor?: string;
}

export class PageInfo {
  @ApiPropertyOptional({ description: 'Pass as ?cursor= for the next page; absent on the last.' })
  nextCursor?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The dates the API takes (years 1 to 9999): JavaScript's range is far wider than PostgreSQL's. */
export const EARLIEST_DATE = new Date('0001-01-01T00:00:00Z');
export const LATEST_DATE = new Date('9999-12-31T23:59:59.999Z');

export function isStorableDate(date: Date): boolean {
  const time = date.getTime();
  return time >= EARLIEST_DATE.getTime() && time <= LATEST_DATE.getTime();
}

/** A cursor is the sort key of the last row seen: (timestamp, id), opaque to callers. */
export function encodeCursor(at: Date, id: string): string {
  return Buffer.from(JSON.stringify([at.toISOString(), id])).toString('base64url');
}

export function decodeCursor(cursor: string): { at: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as [string, string];
    const date = new Date(at);
    // Both reach PostgreSQL: an id that is no UUID or a date it cannot store would fail there.
    if (typeof id !== 'string' || !UUID.test(id) || !isStorableDate(date)) {
      throw new Error('bad cursor');
    }
    return { at: date, id };
  } catch {
    throw new ProblemException(HttpStatus.BAD_REQUEST, 'The cursor is not one this API gave out.', {
      errors: [{ field: 'cursor', message: 'cursor must be a nextCursor from a previous page' }],
    });
  }
}

export class Page<T> {
  @ApiProperty({ isArray: true })
  items: T[];

  @ApiPropertyOptional()
  nextCursor?: string;
}
