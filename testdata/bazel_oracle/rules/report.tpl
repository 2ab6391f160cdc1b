report for %NAME%
flavor: %FLAVOR%
items:
%ITEMS%
