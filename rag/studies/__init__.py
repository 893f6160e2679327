"""Study records: every study a document describes, its fields as exact cited spans.

``detect`` finds where a study is named and which sentences continue it; ``fields`` reads each
field out of those sentences by word classes and patterns; ``records`` assembles them per
document (memoised on the index); ``export`` writes evidence tables; ``questions`` answers
contrast, comparison, listing and follow-up questions from the records.
"""
