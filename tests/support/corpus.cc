#include "tests/support/corpus.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace palisade::testing {

std::string corpusPath(std::string_view relative) {
  std::string path = PALISADE_CORPUS_DIR;
  path.push_back('/');
  path.append(relative);
  return path;
}

std::string readCorpusFile(std::string_view relative) {
  std::string path = corpusPath(relative);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const std::string& IndexRow::operator[](std::string_view column) const {
  static const std::string kEmpty;
  auto it = columns.find(column);
  return it == columns.end() ? kEmpty : it->second;
}

void PrintTo(const IndexRow& row, std::ostream* os) { *os << row["file"]; }

namespace {

std::vector<std::string> splitTabs(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream fields(line);
  std::string field;
  while (std::getline(fields, field, '\t')) out.push_back(field);
  if (!line.empty() && line.back() == '\t') out.emplace_back();
  return out;
}

}  // namespace

std::vector<IndexRow> readCorpusIndex(std::string_view relative) {
  std::stringstream text(readCorpusFile(relative));
  std::vector<IndexRow> rows;
  std::string line;
  std::vector<std::string> names;
  while (std::getline(text, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> fields = splitTabs(line);
    if (names.empty()) {
      names = std::move(fields);
      continue;
    }
    IndexRow row;
    for (std::size_t i = 0; i < names.size() && i < fields.size(); ++i) row.columns[names[i]] = fields[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<std::string> listCorpusFiles(std::string_view relative_dir, std::string_view suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(corpusPath(relative_dir), ec)) {
    if (!entry.is_regular_file()) continue;
    std::string name = entry.path().filename().string();
    if (!suffix.empty() && (name.size() < suffix.size() ||
                            name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)) {
      continue;
    }
    out.push_back(std::string(relative_dir) + "/" + name);
  }
  if (ec) ADD_FAILURE() << "cannot list " << corpusPath(relative_dir) << ": " << ec.message();
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace palisade::testing
