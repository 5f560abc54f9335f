#include "storage/fault_injection_fs.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace cairn::storage {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

class TrackedFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(std::unique_ptr<rocksdb::FSWritableFile> target, FaultInjectionFs* fs,
              std::string fname)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), fname_(std::move(fname)) {}

  IOStatus Append(const Slice& data, const IOOptions& options, IODebugContext* dbg) override {
    if (!fs_->active()) return IOStatus::OK();
    IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) fs_->OnAppend(fname_, data.size());
    return s;
  }
  IOStatus Append(const Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    if (!fs_->active()) return IOStatus::OK();
    IOStatus s = target()->Append(data, options, info, dbg);
    if (s.ok()) fs_->OnAppend(fname_, data.size());
    return s;
  }
  IOStatus PositionedAppend(const Slice&, uint64_t, const IOOptions&, IODebugContext*) override {
    return IOStatus::NotSupported("positioned append in fault injection");
  }
  IOStatus PositionedAppend(const Slice&, uint64_t, const IOOptions&,
                            const rocksdb::DataVerificationInfo&, IODebugContext*) override {
    return IOStatus::NotSupported("positioned append in fault injection");
  }
  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    if (!fs_->active()) return IOStatus::OK();
    IOStatus s = target()->Sync(options, dbg);
    if (s.ok()) fs_->OnSync(fname_);
    return s;
  }
  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    if (!fs_->active()) return IOStatus::OK();
    IOStatus s = target()->Fsync(options, dbg);
    if (s.ok()) fs_->OnSync(fname_);
    return s;
  }
  // sync_file_range gives no durability: pass it on without counting it as a sync.
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    if (!fs_->active()) return IOStatus::OK();
    return target()->RangeSync(offset, nbytes, options, dbg);
  }

 private:
  FaultInjectionFs* const fs_;
  const std::string fname_;
};

}  // namespace

FaultInjectionFs::FaultInjectionFs(std::shared_ptr<rocksdb::FileSystem> base)
    : FileSystemWrapper(std::move(base)) {}

IOStatus FaultInjectionFs::NewWritableFile(const std::string& fname,
                                           const rocksdb::FileOptions& options,
                                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                                           IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->NewWritableFile(fname, options, &file, dbg);
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    files_[fname] = FileState{};
  }
  *result = std::make_unique<TrackedFile>(std::move(file), this, fname);
  return s;
}

IOStatus FaultInjectionFs::ReopenWritableFile(const std::string& fname,
                                              const rocksdb::FileOptions& options,
                                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                                              IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->ReopenWritableFile(fname, options, &file, dbg);
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    // What is on disk now counts as synced: it survived the last reopen.
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(fname, ec);
    files_[fname] = FileState{ec ? 0 : size, ec ? 0 : size};
  }
  *result = std::make_unique<TrackedFile>(std::move(file), this, fname);
  return s;
}

IOStatus FaultInjectionFs::RenameFile(const std::string& src, const std::string& target_name,
                                      const IOOptions& options, IODebugContext* dbg) {
  IOStatus s = target()->RenameFile(src, target_name, options, dbg);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    if (auto it = files_.find(src); it != files_.end()) {
      files_[target_name] = it->second;
      files_.erase(it);
    }
  }
  return s;
}

IOStatus FaultInjectionFs::DeleteFile(const std::string& fname, const IOOptions& options,
                                      IODebugContext* dbg) {
  IOStatus s = target()->DeleteFile(fname, options, dbg);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    files_.erase(fname);
  }
  return s;
}

void FaultInjectionFs::SetActive(bool active) {
  std::lock_guard lock(mu_);
  active_ = active;
}

bool FaultInjectionFs::active() const {
  std::lock_guard lock(mu_);
  return active_;
}

void FaultInjectionFs::OnAppend(const std::string& fname, uint64_t bytes) {
  std::lock_guard lock(mu_);
  files_[fname].size += bytes;
}

void FaultInjectionFs::OnSync(const std::string& fname) {
  std::lock_guard lock(mu_);
  auto& f = files_[fname];
  f.synced = f.size;
}

Status FaultInjectionFs::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  for (auto& [name, state] : files_) {
    if (state.size == state.synced) continue;
    if (::truncate(name.c_str(), static_cast<off_t>(state.synced)) != 0 && errno != ENOENT) {
      return Status::Internal(fmt::format("truncate {}: {}", name, std::strerror(errno)));
    }
    state.size = state.synced;
  }
  return Status::Ok();
}

uint64_t FaultInjectionFs::UnsyncedBytes() const {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  for (const auto& [name, state] : files_) total += state.size - state.synced;
  return total;
}

}  // namespace cairn::storage
