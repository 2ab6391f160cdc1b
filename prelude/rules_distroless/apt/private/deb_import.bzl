"""ocib's rules for one locked Debian package's repository (the BUILD files ocib generates for
`apt.install` load them): the fetched .deb, its data as a layer, its control archive."""

deb_archive = ocib.deb_archive
deb_data = ocib.deb_data
deb_control = ocib.deb_control
