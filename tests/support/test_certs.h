#pragma once
// Certificates made on the spot for tests (never shipped): an EC P-256 key pair and an X.509
// certificate with the validity, names and issuer a test needs, written as PEM files.
#include <cstdint>
#include <string>
#include <vector>

namespace palisade::testing {

struct TestCert {
  std::string certificate;  // PEM file of the certificate alone
  std::string key;          // PEM file of its key
};

struct TestCertSpec {
  std::string common_name = "localhost";
  std::vector<std::string> dns = {"localhost"};
  std::vector<std::string> ips = {"127.0.0.1"};
  std::int64_t not_before_offset_s = -3600;  // from now
  std::int64_t not_after_offset_s = 86400 * 365;
  bool ca = false;
  const TestCert* issuer = nullptr;  // null: self-signed
};

// Writes DIR/NAME.pem and DIR/NAME.key.
TestCert makeTestCert(const std::string& dir, const std::string& name, const TestCertSpec& spec);

// A fresh folder under the system's temporary directory, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Writes `text` to DIR/NAME and returns the path.
  std::string write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

// The whole file.
std::string readFile(const std::string& path);

}  // namespace palisade::testing
