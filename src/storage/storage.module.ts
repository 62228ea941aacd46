import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config';
import { BlobStorage } from './blob-storage';
import { LocalDiskStorage } from './local-disk.storage';

/** Provides `BlobStorage` everywhere; local disk under `STORAGE_DIR` until an S3 driver exists. */
@Global()
@Module({
  providers: [
    {
      provide: BlobStorage,
      useFactory: (config: AppConfig) => new LocalDiskStorage(config.storageDir),
      inject: [AppConfig],
    },
  ],
  exports: [BlobStorage],
})
export class StorageModule {}
