"""Word-level diffs and the three-way merge behind a rebase."""

from desk.reviews.diff import diff_words, merge_texts, tokenize


def test_tokens_join_back_into_the_text():
    text = "Mali signed on 3 December 2008.[^1]\n\n[^1]: Note — “quoted”."
    assert "".join(tokenize(text)) == text


def test_diff_marks_added_and_removed_words_and_escapes_html():
    result = diff_words("Mali has <b>no</b> stockpile.", "Mali has a <b>small</b> stockpile.")
    assert "<b>" not in result.html
    assert "&lt;b&gt;" in result.html
    assert str(result.html) == (
        "Mali has <ins>a </ins>&lt;b&gt;<del>no</del><ins>small</ins>&lt;/b&gt; stockpile."
    )
    assert (result.words_added, result.words_removed) == (2, 1)
    assert result.has_changes


def test_rewording_a_phrase_is_one_change_not_word_salad():
    result = diff_words("It signed in 2008. Then", "It ratified last year. Then")
    assert str(result.html) == "It <del>signed in 2008</del><ins>ratified last year</ins>. Then"


def test_identical_texts_have_no_changes():
    result = diff_words("Same text.\n\nTwo paragraphs.", "Same text.\n\nTwo paragraphs.")
    assert not result.has_changes
    assert "<ins>" not in result.html and "<del>" not in result.html


def test_merge_keeps_changes_to_different_places():
    base = "Mali signed in 2008. It ratified in 2010.\n\nNo stockpile."
    ours = "Mali signed in December 2008. It ratified in 2010.\n\nNo stockpile."
    theirs = "Mali signed in 2008. It ratified in 2010.\n\nNo stockpile. No transit."
    merged = merge_texts(base, ours, theirs)
    assert merged.is_clean
    assert (
        merged.text
        == "Mali signed in December 2008. It ratified in 2010.\n\nNo stockpile. No transit."
    )


def test_merge_keeps_both_additions_at_the_same_place_and_reports_it():
    merged = merge_texts("No stockpile.", "No stockpile. Ours.", "No stockpile. Theirs.")
    assert merged.text == "No stockpile. Theirs. Ours."
    assert [(c.kept_both, c.ours, c.theirs) for c in merged.conflicts] == [
        (True, " Ours.", " Theirs.")
    ]


def test_merge_keeps_ours_where_both_changed_the_same_words():
    merged = merge_texts("Mali signed it.", "Mali ratified it.", "Mali acceded to it.")
    assert merged.text == "Mali ratified it."
    [conflict] = merged.conflicts
    assert (conflict.base, conflict.ours, conflict.theirs, conflict.kept_both) == (
        "signed",
        "ratified",
        "acceded to",
        False,
    )


def test_merge_of_the_same_change_on_both_sides_is_clean():
    merged = merge_texts("Mali signed.", "Mali ratified.", "Mali ratified.")
    assert merged.is_clean
    assert merged.text == "Mali ratified."


def test_changes_to_neighbouring_words_are_one_place_with_ours_kept():
    merged = merge_texts(
        "Mali has no cluster munitions.",
        "Mali has no stockpile of cluster munitions.",
        "Mali has never had cluster munitions.",
    )
    assert merged.text == "Mali has no stockpile of cluster munitions."
    [conflict] = merged.conflicts
    assert (conflict.ours.strip(), conflict.theirs.strip()) == ("no stockpile of", "never had")
