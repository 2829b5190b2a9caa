"""Review tasks on profile sections, section revisions, approval and the Last Updated stamp."""
