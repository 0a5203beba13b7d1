from app.errors import NotFound


class EntryNotFound(NotFound):
    """A journal entry that does not exist, is of the other mode, or touches none of the
    caller's accounts: the three are one answer, so an entry id tells nothing about
    another owner's money. Also the answer to a ``starting_after`` that is not an entry
    of the listing (``param`` ``starting_after``)."""

    code = "entry_not_found"
