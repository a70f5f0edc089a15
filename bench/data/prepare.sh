#!/usr/bin/env bash
# Write scikit-learn's bundled tables (python3-sklearn's data folder) as plain
# CSV files with one header row into DIR. Prints the files written.
# Usage: bench/data/prepare.sh DIR
set -euo pipefail
dir=${1:?usage: prepare.sh DIR}
src=/usr/lib/python3/dist-packages/sklearn/datasets/data
mkdir -p "$dir"

# boston: line 1 is "n,d,...", line 2 the quoted header.
tail -n +2 "$src/boston_house_prices.csv" | tr -d '"' | tr -d '\r' > "$dir/boston.csv"
# iris, wine, breast_cancer: line 1 is "n,d,class names"; add a header.
header() { local n=$1 p=$2; seq -f "${p}%g" 0 $((n - 1)) | paste -sd, | sed 's/$/,label/'; }
{ header 4 f; tail -n +2 "$src/iris.csv"; } | tr -d '\r' > "$dir/iris.csv"
{ header 13 f; tail -n +2 "$src/wine_data.csv"; } | tr -d '\r' > "$dir/wine.csv"
{ header 30 f; tail -n +2 "$src/breast_cancer.csv"; } | tr -d '\r' > "$dir/breast_cancer.csv"
# digits: 64 pixel columns and the class, no header.
{ header 64 px; zcat "$src/digits.csv.gz"; } | tr -d '\r' > "$dir/digits.csv"
# diabetes: space-separated features and a separate target file.
{ echo "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6,target"
  paste -d' ' <(zcat "$src/diabetes_data_raw.csv.gz") \
    <(zcat "$src/diabetes_target.csv.gz" | awk '{ printf "%d\n", $1 }') | tr -s ' ' ','; } > "$dir/diabetes.csv"
ls "$dir"/{boston,iris,wine,breast_cancer,digits,diabetes}.csv
