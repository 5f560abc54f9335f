// A RocksDB file system for tests that simulates losing power: it remembers how much of every
// written file was synced, and can throw away everything that was not.
// After LevelDB's FaultInjectionTestEnv. Use it through rocksdb::NewCompositeEnv(fs).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include "cairn/status.h"

namespace cairn::storage {

class FaultInjectionFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultInjectionFs(std::shared_ptr<rocksdb::FileSystem> base);

  const char* Name() const override { return "CairnFaultInjectionFs"; }

  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;

  // While inactive, appends and syncs are silently discarded: the machine is off.
  void SetActive(bool active);
  bool active() const;

  // Truncates every file written through this file system to its length at its last sync.
  Status DropUnsyncedData();

  // Bytes appended but not synced, over all files.
  uint64_t UnsyncedBytes() const;

  // Called by the file wrappers.
  struct FileState {
    uint64_t size = 0;
    uint64_t synced = 0;
  };
  void OnAppend(const std::string& fname, uint64_t bytes);
  void OnSync(const std::string& fname);

 private:
  mutable std::mutex mu_;
  bool active_ = true;                      // guarded by mu_
  std::map<std::string, FileState> files_;  // guarded by mu_
};

}  // namespace cairn::storage
