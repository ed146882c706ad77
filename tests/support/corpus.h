#pragma once
// Access to the shared test corpora (../shared/corpus, see its README): byte-exact files and
// their index.tsv tables. Files are read in binary mode; nothing here rewrites line endings.
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace palisade::testing {

// PALISADE_CORPUS_DIR + "/" + relative.
std::string corpusPath(std::string_view relative);

// The whole file, byte for byte. Fails the current test (and returns "") when it cannot be read.
std::string readCorpusFile(std::string_view relative);

// One row of an index.tsv: column name -> value.
struct IndexRow {
  std::map<std::string, std::string, std::less<>> columns;
  const std::string& operator[](std::string_view column) const;
};

// Names the row by its "file" column in test output.
void PrintTo(const IndexRow& row, std::ostream* os);

// The rows of a tab-separated index whose first line names the columns.
std::vector<IndexRow> readCorpusIndex(std::string_view relative);

// Regular files directly inside a corpus folder (relative paths, sorted), optionally only
// those whose name ends with `suffix`.
std::vector<std::string> listCorpusFiles(std::string_view relative_dir, std::string_view suffix = {});

}  // namespace palisade::testing
