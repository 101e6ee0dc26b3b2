"""Preprocessing as Spark ML stages, fitted on training data only and saved inside the model pipeline.

Numeric features (booleans as 0/1) are cast to double, imputed with the training median and scaled to
zero mean and unit variance; categorical features are indexed (unseen values get their own index)
and one-hot encoded. Because these stages live in the same PipelineModel as the classifier, scoring
applies exactly the medians, scales and categories learned in training: no training/serving skew.
"""

from __future__ import annotations

from pyspark.ml import Pipeline, Transformer
from pyspark.ml.feature import Imputer, OneHotEncoder, SQLTransformer, StandardScaler, StringIndexer, VectorAssembler

FEATURES_COL = "features"


def stages(numeric: list[str], categorical: list[str], scale: bool = True) -> list[Transformer]:
    casts = ", ".join([f"CAST(`{c}` AS DOUBLE) AS `{c}__num`" for c in numeric]
                      + [f"COALESCE(CAST(`{c}` AS STRING), '__missing__') AS `{c}__cat`" for c in categorical])
    cast = SQLTransformer(statement=f"SELECT *, {casts} FROM __THIS__")
    imputer = Imputer(strategy="median", inputCols=[f"{c}__num" for c in numeric],
                      outputCols=[f"{c}__imp" for c in numeric])
    indexers = [StringIndexer(inputCol=f"{c}__cat", outputCol=f"{c}__idx", handleInvalid="keep",
                              stringOrderType="alphabetAsc") for c in categorical]
    encoder = OneHotEncoder(inputCols=[f"{c}__idx" for c in categorical],
                            outputCols=[f"{c}__ohe" for c in categorical], handleInvalid="keep")
    numeric_vec = VectorAssembler(inputCols=[f"{c}__imp" for c in numeric], outputCol="numeric__vec")
    out = [cast, imputer, *indexers, encoder, numeric_vec]
    if scale:
        out.append(StandardScaler(inputCol="numeric__vec", outputCol="numeric__scaled", withMean=True, withStd=True))
    out.append(VectorAssembler(inputCols=["numeric__scaled" if scale else "numeric__vec",
                                          *[f"{c}__ohe" for c in categorical]], outputCol=FEATURES_COL))
    return out


def feature_names(model_stages, numeric: list[str], categorical: list[str]) -> list[str]:
    """Names of the assembled vector's slots (numeric first, then the one-hot slots of each category).

    With ``handleInvalid="keep"`` the indexer sends a value unseen in training to an extra last index
    (nulls are a category of their own, ``__missing__``), and the encoder (keep + dropLast) gives that
    index a slot: named ``<column>=<unseen>``.
    """
    from pyspark.ml.feature import OneHotEncoderModel, StringIndexerModel

    names = list(numeric)
    indexers = {s.getInputCol()[:-5]: s for s in model_stages if isinstance(s, StringIndexerModel)}
    encoder = next((s for s in model_stages if isinstance(s, OneHotEncoderModel)), None)
    sizes = dict(zip([c[:-5] for c in encoder.getInputCols()], encoder.categorySizes)) if encoder else {}
    for c in categorical:  # stages() encodes with keep + dropLast: one slot per label, then the unseen slot
        labels = list(indexers[c].labels)
        names += [f"{c}={v}" for v in labels] + [f"{c}=<unseen>"] * (sizes[c] - len(labels))
    return names


def pipeline(numeric: list[str], categorical: list[str], classifier, scale: bool = True) -> Pipeline:
    return Pipeline(stages=[*stages(numeric, categorical, scale), classifier])
