"""Map pages (Folium) and their templates and static assets; read through gis/, served by api/."""
